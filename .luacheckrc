-- luacheck configuration: shipped Lua declares no globals (strict), tests use busted's.
std = "lua54"
max_line_length = 120
files["tests/**/*_spec.lua"] = { std = "+busted" }
files["tests/busted_runner.lua"] = { globals = { "os" } }
-- Fixtures that are bad on purpose: the CLI transcripts check ckfb's errors for them.
exclude_files = { "tests/cli/fixtures/syntax_error.lua", "tests/cli/fixtures/leaks_global.lua",
  "tests/cli/fixtures/bad/*.lua" }
