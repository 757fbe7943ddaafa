# Hostile: tags with control characters (issue 13 row 9). A tag with a
# newline was echoed raw in the error message: a message is one line, and
# no control character (newline, escape sequences) from a tag, an argument
# or the catalog reaches the terminal raw; they print as \n, \xNN.
. "$(dirname "$0")/../cli/lib.sh"
command -v sqlite3 >/dev/null || skip "sqlite3 CLI not installed"
base_store
bad=$'ev\nil\x1b[2J\x07x'
raw() { grep -c $'[\x01-\x08\x0b-\x1f\x7f]' "$1" || true; }
check() {   # check CODE CMD...: exits CODE, a one-line message, nothing raw
    local code=$1; shift
    local rc=0
    "$@" >out 2>err || rc=$?
    [ $rc -eq "$code" ] || die "expected exit $code from '$*', got $rc: $(cat err)"
    [ "$(grep -c '^forkctl' err)" -ge 1 ] || die "no message from '$*'"
    [ "$(grep -vc '^forkctl\|^Try ' err)" = 0 ] || die "message of '$*' spans lines: $(cat -A err)"
    [ "$(raw err)" = 0 ] && [ "$(raw out)" = 0 ] || die "raw control characters from '$*': $(cat -A err)"
    grep -q 'ev\\nil\\x1b\[2J\\x07x' err || die "tag not shown escaped by '$*': $(cat -A err)"
}
check 2 fk restore "$bad" --out o
check 2 fk tag base "$bad"
check 2 fk tag "$bad" x
check 2 fk rmi "$bad"
check 2 fk log "$bad"
check 2 fk info "$bad"
check 2 fk export "$bad" --forkd ex
check 2 fk ingest --tag "$bad" --memory m --vmstate vm
check 2 fk ingest --tag t --parent "$bad" --memory m --vmstate vm
check 2 fk ingest --tag t --memory m --vmstate vm --file "$bad=extra"
check 2 fk ingest --tag "-$bad" --memory m --vmstate vm
check 2 fk init "$TESTDIR/new" --chunk-size "1M$bad"
check 2 fk prune --keep-within "$bad"
check 2 fk sql "SELECT * FROM \"$bad\""
# A tag put into the catalog behind forkctl's back prints escaped too.
sqlite3 store/catalog.db "UPDATE snapshot SET tag = 'ev' || char(10) || 'il' || char(27) || '[2J' WHERE tag = 'base'"
for c in images sql; do
    if [ $c = sql ]; then fk sql "SELECT tag FROM snapshot" >out 2>err; else fk images >out 2>err; fi ||
        die "$c failed: $(cat err)"
    [ "$(raw out)" = 0 ] || die "$c printed raw control characters: $(cat -A out)"
    grep -q 'ev\\x0ail\\x1b\[2J' out || die "$c: tag not shown escaped: $(cat -A out)"
done
# CSV and JSON keep the bytes, quoted or escaped by their own rules.
[ "$(fk sql "SELECT tag FROM snapshot" --json | jq -r '.[0].tag')" = $'ev\nil\x1b[2J' ] || die "json lost the tag"
fk sql "SELECT tag FROM snapshot" --csv | grep -q '^"ev$' || die "csv does not quote a newline"
