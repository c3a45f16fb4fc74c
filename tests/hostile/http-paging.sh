#!/bin/bash
# resbusd's JSON API lists are pages: /api/v1/tickets and /api/v1/resources
# take ?after=ID&limit=N (100 by default, at most 1000) and give a "next"
# cursor, so that a poller never has the broker write every ticket at once;
# the status page shows the first 100 with a link to the rest.  Four
# pollers walking every page meanwhile do not stop a ticket cycle, and
# resbusd is the same process afterwards.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
if [ -f "$RESBUS_SRCDIR/tests/hostile/lib.sh" ]; then
	# shellcheck disable=SC1091
	. "$RESBUS_SRCDIR/tests/hostile/lib.sh"
fi
# shellcheck source=tests/status/http.sh
. "$RESBUS_SRCDIR/tests/status/http.sh"

NTICKETS=250
http_setup http-paging
http_hold_tickets "$NTICKETS"
rb_log "$NTICKETS tickets open"

# walk PATH LIMIT: every page of the list PATH with limit LIMIT (none if
# empty), checked; prints the IDs, one a line.
walk() {
	python3 - "$BASE" "$1" "$2" <<'EOF'
import json, sys, urllib.request
base, path, limit = sys.argv[1], sys.argv[2], sys.argv[3]
key = path.rsplit("/", 1)[1]
ids, after, pages = [], None, 0
while True:
    q = []
    if after is not None:
        q.append("after=%d" % after)
    if limit:
        q.append("limit=" + limit)
    url = base + path + ("?" + "&".join(q) if q else "")
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200, (url, r.status)
        doc = json.load(r)
    assert set(doc) == {key, "next"}, doc.keys()
    page = [x["id"] for x in doc[key]]
    assert len(page) <= int(limit or 100), (url, len(page))
    assert page == sorted(page), url
    assert after is None or not page or page[0] > after, (url, page[0])
    ids += page
    pages += 1
    if doc["next"] is None:
        break
    assert len(page) == int(limit or 100), (url, len(page))
    assert doc["next"] == page[-1], (url, doc["next"], page[-1])
    after = doc["next"]
assert len(ids) == len(set(ids)), "an ID twice"
print("\n".join(str(i) for i in ids))
print("pages", pages, file=sys.stderr)
EOF
}

D=$RB_TMP/http
mkdir -p "$D"
walk /api/v1/tickets "" >"$D/ids-default" || rb_fail "walking /api/v1/tickets"
rb_assert_eq "$NTICKETS" "$(wc -l <"$D/ids-default")" "tickets seen"
walk /api/v1/tickets 7 >"$D/ids-7" || rb_fail "walking /api/v1/tickets?limit=7"
cmp -s "$D/ids-default" "$D/ids-7" || rb_fail "limit=7 gives other tickets"
walk /api/v1/tickets 5000 >"$D/ids-max" || rb_fail "walking with limit=5000"
cmp -s "$D/ids-default" "$D/ids-max" || rb_fail "limit=5000 gives other tickets"
walk /api/v1/resources 1 >"$D/res" || rb_fail "walking /api/v1/resources"
rb_assert_eq 1 "$(wc -l <"$D/res")" "resources seen"

# A page past the end, and arguments that are not numbers.
last=$(tail -n 1 "$D/ids-default")
curl -s --max-time 10 "$BASE/api/v1/tickets?after=$last" >"$D/end.json"
rb_assert_eq '{"tickets":[],"next":null}' "$(cat "$D/end.json")" "page past the end"
for q in 'after=x' 'limit=0' 'limit=-1' 'after=1&limit=1e3' 'after=99999999999999999999'; do
	rb_assert_eq 400 "$(http_code "/api/v1/tickets?$q")" "/api/v1/tickets?$q"
	rb_assert_eq 400 "$(http_code "/api/v1/resources?$q")" "/api/v1/resources?$q"
done

# The status page: the first 100 tickets and a link to the next page.
curl -s --max-time 10 "$BASE/" >"$D/index.html"
rows=$(grep -c '^<tr><td class="n">[0-9]*</td><td>OPEN</td>' "$D/index.html")
rb_assert_eq 100 "$rows" "ticket rows on the status page"
hundredth=$(sed -n 100p "$D/ids-default")
rb_assert_match "$((NTICKETS - 100)) more tickets: see <a href=\"/api/v1/tickets\\?after=$hundredth\">" \
    "$(cat "$D/index.html")" "the link to the rest"

# The metrics count tickets without listing them.
curl -s --max-time 10 "$BASE/metrics" >"$D/metrics.txt"
rb_assert_match '^resbus_tickets\{state="open"\} '"$NTICKETS"'$' \
    "$(cat "$D/metrics.txt")" "metrics"

# Four pollers walk every page, in a loop, while a ticket goes round.
for i in 1 2 3 4; do
	(while :; do walk /api/v1/tickets 1000 >/dev/null 2>&1; done) &
	rb_track $!
done
start=$(date +%s%N)
http_cycle
ms=$((($(date +%s%N) - start) / 1000000))
rb_log "a ticket cycle took $ms ms under four pollers"
[ "$ms" -lt 10000 ] || rb_fail "a ticket cycle took $ms ms under four pollers"
http_all_answer
http_same_broker
rb_done
