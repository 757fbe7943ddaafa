# Row 9: two concurrent inits of one directory: exactly one succeeds, the
# other says the store exists (exit 1); never both fail.
. "$(dirname "$0")/../cli/lib.sh"
n=${HOSTILE_LONG:+100}
n=${n:-20}
for i in $(seq 1 "$n"); do
    "$FORKCTL" --store "d$i" init --chunk-size 1M >/dev/null 2>"e$i.a" & a=$!
    "$FORKCTL" --store "d$i" init --chunk-size 1M >/dev/null 2>"e$i.b" & b=$!
    ra=0 rb=0
    wait $a || ra=$?
    wait $b || rb=$?
    ok=$(( (ra == 0) + (rb == 0) ))
    [ $ok = 1 ] || die "pair $i: exits $ra and $rb: $(cat "e$i.a" "e$i.b")"
    lose=$([ $ra = 0 ] && echo "e$i.b" || echo "e$i.a")
    grep -q "already holds a store" "$lose" || die "pair $i: unclear message: $(cat "$lose")"
    [ $((ra + rb)) = 1 ] || die "pair $i: the loser exits $((ra + rb)), not 1"
    "$FORKCTL" --store "d$i" verify >/dev/null || die "pair $i: the store does not verify"
    [ -z "$(ls "d$i" | grep catalog.db.init)" ] || die "pair $i: a temporary catalog was left"
done
echo "$n pairs: one init won each time"
