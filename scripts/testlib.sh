# Sourced by the shell self-tests (scripts/gpu-check.sh selftest, workflow/test.sh):
# `check NAME COMMAND…` runs one test quietly and shows its output only when it fails;
# `finish SUITE` prints the closing count and fails if any test did.
passed=0 failed=0
check_log=$(mktemp)
check() {
  local name=$1; shift
  if "$@" > "$check_log" 2>&1; then passed=$((passed + 1)); echo "ok: $name"; else
    failed=$((failed + 1)); echo "FAILED: $name"; sed 's/^/    /' "$check_log"; fi
}
finish() {
  rm -f "$check_log"
  echo "$1: $passed passed, $failed failed"
  ((failed == 0))
}
