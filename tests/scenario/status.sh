#!/bin/bash
# The faces of resbusd: the status page, the JSON API and the Prometheus
# metrics served on http_listen, seen by curl and by a real headless
# Chromium; the history of the last minutes on the page (SVG charts with
# data in them) and in /api/v1/history, sampled every second here; no
# secret from a pool's commands on any of them; and the
# fedora-messaging-style JSON notifications, seen by a real AMQP consumer
# with their properties and headers.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

rb_setup status
for tool in curl python3 chromium; do
	command -v "$tool" >/dev/null ||
	    rb_fail "$tool is missing (scripts/deps.sh installs it)"
done
CONSUME=$RESBUS_BUILDDIR/tests/status/consume
PROMPARSE=$RESBUS_SRCDIR/tests/status/promparse.py
[ -x "$CONSUME" ] || rb_fail "$CONSUME is missing: make check builds it"
python3 "$PROMPARSE" --self-test || rb_fail "the metrics parser fails its self-test"

port=$(rb_closed_port)
BASE="http://127.0.0.1:$port"
PREFIX="org.resbus.test$$"
RB_SERVER_EXTRA="http_listen: \"127.0.0.1:$port\"
history_interval_s: 1
notify_topic_prefix: $PREFIX"
rb_server_yaml
SECRET=s3cr3t-value
rb_pools <<EOF
web:
  description: "web builders <b>&amp; friends</b>"
  max: 2
  max_prealloc: 1
  cmd_new: "TOKEN=$SECRET @DRIVERDIR@/new"
  cmd_delete: "TOKEN=$SECRET @DRIVERDIR@/delete"
  cmd_livecheck: "TOKEN=$SECRET true"
  livecheck_period: 3600
  tags:
    - web
    - name: fast
      priority: 5
spare:
  max: 1
  cmd_new: "TOKEN=$SECRET RESBUS_LOCAL_DELAY=2 @DRIVERDIR@/new"
  cmd_delete: "TOKEN=$SECRET @DRIVERDIR@/delete"
  tags_on_demand:
    - huge
fragile:
  max: 1
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  cmd_livecheck: "test ! -e @STATEDIR@/fragile-dead"
  livecheck_period: 1
  livecheck_attempts: 1
  tags:
    - fragile
EOF

# A consumer of the notifications, bound before anything happens.
"$CONSUME" "$RB_AMQP_URL" amq.topic "$PREFIX.resbus.#" 1000 280 \
    >"$RB_TMP/notes.jsonl" 2>"$RB_TMP/consume.err" &
rb_track $!
rb_wait_for "the consumer to bind its queue" 30 grep -qx bound "$RB_TMP/consume.err"

rb_start_worker
rb_start_broker
rb_wait_for "two preallocated resources" 60 rb_local_count_is 2

id=$(rb_resbus ticket --tag web --tag fast --sandbox sb-1) ||
    rb_fail "resbus ticket failed ($?)"
rb_assert_match '^[0-9]+$' "$id" "ticket id"
rb_resbus ticket-wait "$id" --timeout 60 >/dev/null ||
    rb_fail "resbus ticket-wait $id failed ($?)"
rb_log "ticket $id ready"

# fetch PATH FILE [EXPECTED_STATUS]: GET BASE/PATH into FILE.
fetch() {
	local code
	code=$(curl -s -o "$2" -w '%{http_code}' --max-time 10 "$BASE$1") ||
	    rb_fail "curl $BASE$1 failed"
	rb_assert_eq "${3:-200}" "$code" "HTTP status of $1"
}
D=$RB_TMP/http
mkdir -p "$D"

# ---- (a) the pages, the API and the metrics --------------------------------
fetch /api/v1/resources "$D/resources.json"
python3 - "$D/resources.json" "$id" >"$D/taken" <<'EOF' ||
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["next"] is None, doc  # a few resources: one page
taken = [r for r in doc["resources"] if r["ticket"] == int(sys.argv[2])]
assert len(taken) == 1, doc
r = taken[0]
assert r["pool"] == "web" and r["state"] == "UP", r
assert r["sandbox"] == "sb-1", r
assert r["tags"] == ["web", "fast"], r
assert r["log"] == "%06d_alloc" % r["id"], r
print(r["id"], r["name"])
EOF
    rb_fail "/api/v1/resources: $(cat "$D/resources.json")"
read -r rid rname <"$D/taken"
rb_log "ticket $id has resource $rid $rname"

fetch / "$D/index.html"
index=$(cat "$D/index.html")
rb_assert_match '<table id="pools">' "$index" "status page"
rb_assert_match "<td>web</td><td class=\"n\">2</td>" "$index" "web pool row"
rb_assert_match "<td>spare</td>" "$index" "spare pool row"
rb_assert_match "<a href=\"/resources/$rid\">$rname</a>" "$index" "resource row"
rb_assert_match "<code>$(printf '%06d' "$rid")_alloc</code>" "$index" "log name"
rb_assert_match "<td class=\"n\">$id</td><td>READY</td><td>fast\\+web</td><td>sb-1</td>" \
    "$index" "ticket row"
fetch '/?all=1' "$D/index-all.html"
rb_assert_match 'Ended resources are not kept' "$(cat "$D/index-all.html")" "?all=1"

fetch /api/v1/pools "$D/pools.json"
python3 - "$D/pools.json" <<'EOF' || rb_fail "/api/v1/pools: $(cat "$D/pools.json")"
import json, sys
pools = {p["name"]: p for p in json.load(open(sys.argv[1]))["pools"]}
assert set(pools) == {"web", "spare", "fragile"}, pools
w = pools["web"]
assert w["max"] == 2 and w["taken"] == 1 and w["configured"], w
assert w["starts_ok"] >= 1 and w["start_success_ratio"] == 1.0, w
assert pools["spare"]["on_demand_demand"] == 0, pools["spare"]
EOF
fetch /api/v1/tickets "$D/tickets.json"
python3 - "$D/tickets.json" "$id" "$rid" <<'EOF' || rb_fail "/api/v1/tickets: $(cat "$D/tickets.json")"
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["next"] is None, doc  # one ticket: the first page is the last
t = [t for t in doc["tickets"] if t["id"] == int(sys.argv[2])]
assert len(t) == 1, t
t = t[0]
assert t["state"] == "READY" and t["tags"] == ["fast", "web"], t
assert t["sandbox"] == "sb-1" and t["resource"]["id"] == int(sys.argv[3]), t
EOF

fetch /metrics "$D/metrics.txt"
python3 "$PROMPARSE" "$D/metrics.txt" \
    --family resbus_tickets:gauge \
    --family resbus_resources:gauge \
    --family resbus_pool_starts_total:counter \
    --family resbus_pool_start_success_ratio:gauge \
    --family resbus_pool_start_seconds_avg:gauge \
    --family resbus_tickets_waiting:gauge >"$D/samples.txt" ||
    rb_fail "/metrics does not parse: $(cat "$D/metrics.txt")"
samples=$(cat "$D/samples.txt")
rb_assert_match '^resbus_tickets\{state="ready"\} 1$' "$samples" "metrics"
rb_assert_match '^resbus_tickets\{state="open"\} 0$' "$samples" "metrics"
rb_assert_match '^resbus_resources\{pool="web",state="taken"\} 1$' "$samples" "metrics"
rb_assert_match '^resbus_pool_starts_total\{pool="web",result="ok"\} [1-9]' "$samples" "metrics"
rb_assert_match '^resbus_pool_starts_total\{pool="web",result="failed"\} 0$' "$samples" "metrics"
rb_assert_match '^resbus_pool_start_success_ratio\{pool="web"\} 1$' "$samples" "metrics"
rb_assert_match '^resbus_pool_start_success_ratio\{pool="spare"\} NaN$' "$samples" "metrics"
rb_assert_match '^resbus_tickets_waiting\{pool="spare"\} 0$' "$samples" "metrics"
content_type=$(curl -s -o /dev/null -w '%{content_type}' "$BASE/metrics")
rb_assert_match '^text/plain; version=0\.0\.4' "$content_type" "metrics content type"

# ---- (b) the resource page: public settings, never a secret ----------------
fetch "/resources/$rid" "$D/resource.html"
fetch "/api/v1/resources/$rid" "$D/resource.json"
page=$(cat "$D/resource.html")
rb_assert_match "<tr><th>max_starting</th><td>1</td></tr>" "$page" "resource page"
rb_assert_match "<tr><th>tags</th><td>web \\(priority 0\\), fast \\(priority 5\\)</td></tr>" \
    "$page" "resource page tags"
rb_assert_match "<tr><th>livecheck_period</th><td>3600</td></tr>" "$page" "resource page"
rb_assert_match "cmd_new, cmd_delete, cmd_livecheck" "$page" "configured commands"
# The description is shown escaped, never as markup.
rb_assert_match "web builders &lt;b&gt;&amp;amp; friends&lt;/b&gt;" "$page" "escaped description"
rb_assert_no_match "<b>" "$page" "resource page"
python3 - "$D/resource.json" <<'EOF' || rb_fail "/api/v1/resources/ID: $(cat "$D/resource.json")"
import json, sys
doc = json.load(open(sys.argv[1]))
p = doc["pool"]
assert p["max"] == 2 and p["max_prealloc"] == 1 and p["start_delay"] == 0, p
assert p["tags"] == [{"name": "web", "priority": 0}, {"name": "fast", "priority": 5}], p
assert p["reuse_max_time"] == 3600 and p["livecheck_period"] == 3600, p
assert not any(k.startswith("cmd_") and not k.endswith(("_timeout", "_period")) for k in p), p
assert doc["resource"]["state"] == "UP", doc
EOF
fetch /resources/999999 "$D/missing.html" 404
fetch /resources/nope "$D/missing2.html" 404
fetch /api/v1/resources/999999 "$D/missing.json" 404
python3 -c 'import json,sys; assert "error" in json.load(open(sys.argv[1]))' \
    "$D/missing.json" || rb_fail "404 of the API is not a JSON error"
fetch /no/such/page "$D/nopage.html" 404
# Nothing served carries the secret (or any piece of the commands).
if grep -l -e "$SECRET" -e 'TOKEN=' -e "$RB_DRIVERDIR" "$D"/*; then
	rb_fail "a page shows a pool's command"
fi

# ---- (b2) the history: charts and /api/v1/history -------------------------
# Two tickets for spare's on-demand tag: the first waits for a start of
# 2 s, the second for the first to let go (spare's max is 1).
h1=$(rb_resbus ticket --tag huge) || rb_fail "resbus ticket failed ($?)"
h2=$(rb_resbus ticket --tag huge) || rb_fail "resbus ticket failed ($?)"
rb_resbus ticket-wait "$h1" --timeout 60 >/dev/null ||
    rb_fail "resbus ticket-wait $h1 failed ($?)"
# waited_samples KEY N: /api/v1/history has N samples with tickets of
# tag set KEY waiting.
waited_samples() {
	curl -s --max-time 10 "$BASE/api/v1/history" >"$D/history-poll.json" &&
	    python3 - "$D/history-poll.json" "$1" "$2" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
s = [w for w in doc["waiting"] if w["key"] == sys.argv[2]]
assert s and sum(1 for v in s[0]["values"] if v > 0) >= int(sys.argv[3])
EOF
}
# holding_while_waiting: the last sample saw the first ticket's resource
# taken and the second ticket waiting.
holding_while_waiting() {
	curl -s --max-time 10 "$BASE/api/v1/history" >"$D/history-poll.json" &&
	    python3 - "$D/history-poll.json" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
spare = [r for r in doc["resources"] if r["pool"] == "spare"][0]
huge = [w for w in doc["waiting"] if w["key"] == "huge"][0]
assert spare["taken"][-1] == 1 and huge["values"][-1] == 1
EOF
}
rb_wait_for "three samples with ticket $h2 waiting" 30 waited_samples huge 3
rb_wait_for "a sample with ticket $h1 served and $h2 waiting" 30 \
    holding_while_waiting
rb_resbus ticket-close "$h1" || rb_fail "resbus ticket-close $h1 failed ($?)"
rb_resbus ticket-wait "$h2" --timeout 60 >/dev/null ||
    rb_fail "resbus ticket-wait $h2 failed ($?)"
rb_resbus ticket-close "$h2" || rb_fail "resbus ticket-close $h2 failed ($?)"
# samples_after MS: a sample was taken after MS (Unix time in ms).
samples_after() {
	curl -s --max-time 10 "$BASE/api/v1/history" >"$D/history-poll.json" &&
	    python3 -c 'import json, sys
assert json.load(open(sys.argv[1]))["times_ms"][-1] > int(sys.argv[2])' \
	    "$D/history-poll.json" "$1"
}
rb_wait_for "a sample after ticket $h2 was closed" 30 \
    samples_after "$(($(date +%s%3N) + 1000))"
fetch /api/v1/history "$D/history.json"
fetch / "$D/index-history.html"
python3 - "$D/history.json" "$D/index-history.html" <<'EOF' ||
import json, re, sys
doc = json.load(open(sys.argv[1]))
page = open(sys.argv[2]).read()
assert doc["interval_seconds"] == 1 and doc["capacity"] == 360, doc
assert doc["max_tagsets"] == 16 and doc["max_pools"] == 16, doc
n = doc["samples"]
assert 5 <= n <= 360 and len(doc["times_ms"]) == n, doc
t = doc["times_ms"]
assert all(a < b for a, b in zip(t, t[1:])), t
# Tickets waiting: huge's two waited; the web ticket was served at once.
waiting = {w["key"]: w for w in doc["waiting"]}
assert "huge" in waiting, doc["waiting"]
huge = waiting["huge"]
assert huge["tags"] == ["huge"] and huge["other"] is False, huge
assert len(huge["values"]) == n and max(huge["values"]) == 2, huge
assert huge["values"][-1] == 0, huge  # both got a resource
# Resources per pool and state.
res = {r["pool"]: r for r in doc["resources"]}
assert set(res) == {"web", "spare", "fragile"}, res
states = ("starting", "free", "released", "taken", "releasing", "deleting")
for r in res.values():
    assert all(len(r[s]) == n for s in states) and r["other"] is False, r
assert res["web"]["taken"][-1] == 1, res["web"]  # the first ticket's
assert max(res["spare"]["starting"]) == 1, res["spare"]
assert max(res["spare"]["taken"]) == 1, res["spare"]
# Time to READY: the web ticket at once, huge's first after a 2 s start,
# its second after that and another start (or a reuse).
ready = doc["ready"]
assert sum(ready["count"]) == 3, ready
for c, p, m in zip(ready["count"], ready["p50_seconds"], ready["max_seconds"]):
    assert (c == 0) == (p is None) == (m is None), ready
    assert c == 0 or 0 <= p <= m, ready
assert max(m for m in ready["max_seconds"] if m is not None) >= 2, ready
# The page draws the same: one path per series, with points in them.
def chart(cid):
    m = re.search(r'<figure class="chart" id="%s">(.*?)</figure>' % cid,
                  page, re.S)
    assert m, "no chart %s" % cid
    return m.group(1)
def path(body, series):
    m = re.search(r'<path class="series" data-series="%s"[^>]* d="([^"]*)"'
                  % re.escape(series), body)
    assert m, "no path %s in %s" % (series, body)
    d = m.group(1)
    assert d.startswith("M") and len(re.findall(r"[MHV]", d)) >= 3, d
    return d
w = chart("chart-waiting")
assert w.count('class="series"') == len(doc["waiting"]), w
d = path(w, "huge")
# The line rose to 2, the top of the axis (y 8.0), and fell back to 0
# (y 128.0).
assert ">2</text>" in w and "V8.0" in d and "V128.0" in d, d
r = chart("chart-ready")
path(r, "median")
path(r, "max")
p = chart("chart-pool-spare")
path(p, "starting")
path(p, "taken")
path(chart("chart-pool-web"), "taken")
assert '<a href="/api/v1/history">' in page
assert "<script" not in page.lower()
EOF
    rb_fail "history: $(cat "$D/history.json")"
rb_log "history: $(python3 -c 'import json, sys
print(json.load(open(sys.argv[1]))["samples"])' "$D/history.json") samples, charts with data"

# ---- (c) a real browser renders the page -----------------------------------
chrome() {
	timeout -k 5 120 chromium --headless --no-sandbox --disable-gpu \
	    --disable-quic --no-first-run --disable-background-networking \
	    --disable-component-update --disable-sync \
	    --user-data-dir="$(mktemp -d "$RB_TMP/chrome.XXXXXX")" "$@"
}
chrome --dump-dom "$BASE/" >"$D/dom.html" 2>"$RB_TMP/chrome-dom.err" ||
    rb_fail "chromium --dump-dom failed: $(tail -5 "$RB_TMP/chrome-dom.err")"
dom=$(cat "$D/dom.html")
rb_assert_match '<td>web</td>' "$dom" "rendered DOM: pool"
rb_assert_match ">$rname</a>" "$dom" "rendered DOM: resource"
rb_assert_match '<h1>resbus status</h1>' "$dom" "rendered DOM: title"
# The charts are in the rendered page, drawn from the samples.
rb_assert_match '<figure class="chart" id="chart-waiting">' "$dom" "rendered DOM: chart"
rb_assert_match '<path class="series" data-series="huge"[^>]* d="M' "$dom" \
    "rendered DOM: the waiting tickets' line"
chrome --screenshot="$RB_TMP/status.png" --window-size=1280,900 "$BASE/" \
    >"$RB_TMP/chrome-shot.out" 2>&1 ||
    rb_fail "chromium --screenshot failed: $(tail -5 "$RB_TMP/chrome-shot.out")"
python3 - "$RB_TMP/status.png" <<'EOF' || rb_fail "the screenshot is not a 1280x900 PNG"
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", data[:16]
w, h = struct.unpack(">II", data[16:24])
assert (w, h) == (1280, 900), (w, h)
assert len(data) > 5000, len(data)
EOF
mkdir -p "$RESBUS_BUILDDIR/test-artifacts"
cp "$RB_TMP/status.png" "$RESBUS_BUILDDIR/test-artifacts/status.png"
rb_log "screenshot in $RESBUS_BUILDDIR/test-artifacts/status.png"

# ---- (d) the notifications -------------------------------------------------
has_note() {
	grep -q "\"routing_key\":\"$PREFIX.resbus.$1\"" "$RB_TMP/notes.jsonl"
}
rb_wait_for "the ticket.ready notification" 30 has_note ticket.ready
rb_resbus ticket-close "$id" || rb_fail "resbus ticket-close $id failed ($?)"
rb_wait_for "the ticket.closed notification" 30 has_note ticket.closed
rb_wait_for "the resource.deleted notification" 60 has_note resource.deleted
# A ticket whose resource dies (its livecheck fails) is announced as
# failed, with a warning severity.
fid=$(rb_resbus ticket --tag fragile) || rb_fail "resbus ticket failed ($?)"
rb_resbus ticket-wait "$fid" --timeout 60 >/dev/null ||
    rb_fail "resbus ticket-wait $fid failed ($?)"
touch "$RB_TMP/fragile-dead"
rb_wait_for "the ticket.failed notification" 60 has_note ticket.failed
rm -f "$RB_TMP/fragile-dead"
rb_resbus ticket-close "$fid" >/dev/null 2>&1
python3 - "$RB_TMP/notes.jsonl" "$PREFIX" "$id" "$rid" "$rname" "$fid" <<'EOF' ||
import json, re, sys
path, prefix, tid, rid, rname, fid = sys.argv[1:]
notes = [json.loads(l) for l in open(path)]
def one(key, pred=lambda n: True):
    hits = [n for n in notes if n["routing_key"] == prefix + ".resbus." + key
            and pred(n)]
    assert hits, "no %s in %s" % (key, [n["routing_key"] for n in notes])
    return hits
def body(n):
    return json.loads(n["body"])
for n in notes:
    assert n["exchange"] == "amq.topic", n
    assert n["content_type"] == "application/json", n
    assert n["content_encoding"] == "utf-8", n
    assert n["delivery_mode"] == 2, n
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}"
                        r"-[0-9a-f]{12}", n["message_id"]), n
    h, k = n["headers"], n["header_kinds"]
    schema = n["routing_key"][len(prefix) + 1:]
    assert h["fedora_messaging_schema"] == schema, n
    assert k["fedora_messaging_severity"] == "int", n
    assert h["fedora_messaging_severity"] == (30 if schema.endswith(".failed")
                                              else 20), n
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", h["sent-at"]), n
    assert k["priority"] == "int" and h["priority"] == 0, n
ids = set()
for key in ("ticket.open", "ticket.ready", "ticket.closed"):
    (n,) = one(key, lambda n: body(n)["ticket"]["id"] == int(tid))
    ids.add(n["message_id"])
    t = body(n)["ticket"]
    assert t["state"] == key.split(".")[1], t
    assert t["tags"] == ["fast", "web"] and t["sandbox"] == "sb-1", t
    # The owner is the AMQP user the CLI logged in as.
    assert n["headers"].get("fedora_messaging_user_guest") is True, n
    assert n["header_kinds"]["fedora_messaging_user_guest"] == "bool", n
    if key != "ticket.open":
        assert t["resource"] == {"id": int(rid), "name": rname, "pool": "web"}, t
assert len(ids) == 3, "message IDs repeat"
(n,) = one("ticket.failed", lambda n: body(n)["ticket"]["id"] == int(fid))
assert n["headers"]["fedora_messaging_severity"] == 30, n
t = body(n)["ticket"]
assert t["state"] == "failed" and t["tags"] == ["fragile"], t
assert t["sandbox"] is None and t["resource"]["pool"] == "fragile", t
assert len({n["message_id"] for n in notes}) == len(notes), "message IDs repeat"
for key in ("resource.starting", "resource.up", "resource.deleted"):
    (n,) = one(key, lambda n: body(n)["resource"]["id"] == int(rid))
    r = body(n)["resource"]
    assert r == {"id": int(rid), "name": rname, "pool": "web",
                 "state": key.split(".")[1]}, r
EOF
    rb_fail "notifications: $(cat "$RB_TMP/notes.jsonl")"

rb_done
