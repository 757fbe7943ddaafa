# Rows 1 and 6 under real crashes: tools/crashtest.sh with 1 MiB chunks
# (most ingests create chunks). No command that was not killed may fail
# (no ingest refused after a crash), and after gc no dead chunk bytes,
# empty chunks or strays remain. Short: 8 kills; long: 200.
. "$(dirname "$0")/../cli/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
kills=${HOSTILE_LONG:+200}
"$root/tools/crashtest.sh" --kills "${kills:-8}" --size 4M --chunk-size 1M --dir "$TESTDIR/crash"
