# tests/run itself: a temporary file a spec leaves behind fails the run, even
# when every test passed.
$ cd ../.. && tests/run tests/cli/fixtures/leak_spec.lua | grep -E '^(not ok|#   lua_|[0-9]+ passed)' | sed 's/^#   lua_.*/(the file: lua_XXXXXX)/'
not ok - the tests left temporary files behind:
(the file: lua_XXXXXX)
1 passed, 1 failed
