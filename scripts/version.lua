-- ckfb version: the version (semver), the commit it was built from, and Lua's.
print(require("ckfb.cli").version_line())
return 0
