#!/usr/bin/python3
"""Checks a Grafana dashboard against what resbusd's /metrics serves.

    dashboard.py DASHBOARD.json METRICS.txt
    dashboard.py --prometheus URL DASHBOARD.json
    dashboard.py --self-test

Collects the PromQL of every panel's targets (rows' nested panels too)
and of the template variables, and the metric names each expression
queries (names of selectors, not functions, keywords, label names of
by/without/on/ignoring, strings, ranges or $variables).  Fails when the
dashboard has no panel, when a panel has no query or a query names no
metric, when a queried metric is not a sample name in METRICS.txt
(Prometheus text format), or when a selector matches on a label that
the metric's samples do not carry.  Prints each metric name with the
panels that query it.

With --prometheus, runs every query, with Grafana's variables replaced
($pool by .*, $__rate_interval by 1m), against the Prometheus at URL
(which scrapes resbusd) as an instant query, and fails when Prometheus
refuses one (PromQL that does not parse or does not type-check) or when
one returns no series: every panel must show something.
"""
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

IDENT_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# PromQL's aggregation operators, keywords and functions.
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar",
                "count", "count_values", "bottomk", "topk", "quantile",
                "limitk", "limit_ratio"}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"bool", "and", "or", "unless", "offset", "atan2", "inf", "nan"}
FUNCTIONS = {
    "abs", "absent", "absent_over_time", "ceil", "changes", "clamp",
    "clamp_max", "clamp_min", "day_of_month", "day_of_week", "day_of_year",
    "days_in_month", "delta", "deriv", "exp", "floor", "histogram_avg",
    "histogram_count", "histogram_fraction", "histogram_quantile",
    "histogram_stddev", "histogram_stdvar", "histogram_sum", "holt_winters",
    "hour", "idelta", "increase", "irate", "label_join", "label_replace",
    "ln", "log2", "log10", "minute", "month", "predict_linear", "rate",
    "resets", "round", "scalar", "sgn", "sort", "sort_desc", "sqrt", "time",
    "timestamp", "vector", "year", "avg_over_time", "min_over_time",
    "max_over_time", "sum_over_time", "count_over_time",
    "quantile_over_time", "stddev_over_time", "stdvar_over_time",
    "last_over_time", "present_over_time", "acos", "acosh", "asin",
    "asinh", "atan", "atanh", "cos", "cosh", "sin", "sinh", "tan", "tanh",
    "deg", "rad", "pi"}
NOT_METRICS = AGGREGATIONS | GROUPING | KEYWORDS | FUNCTIONS


def skip_string(s, i):
    q = s[i]
    i += 1
    while i < len(s) and s[i] != q:
        i += 2 if s[i] == "\\" else 1
    if i >= len(s):
        raise ValueError("unterminated string in %r" % s)
    return i + 1


def skip_until(s, i, close):
    """Index after the CLOSE that ends the group opened at s[i]."""
    i += 1
    while i < len(s) and s[i] != close:
        i = skip_string(s, i) if s[i] in "\"'`" else i + 1
    if i >= len(s):
        raise ValueError("no %r in %r" % (close, s))
    return i + 1


def matcher_labels(block):
    """The label names of a {...} matcher block (without the braces)."""
    labels, i = [], 0
    while i < len(block):
        c = block[i]
        if c in "\"'`":
            i = skip_string(block, i)
        elif IDENT_RE.match(c):
            m = IDENT_RE.match(block, i)
            labels.append(m.group(0))
            i = m.end()
        else:
            i += 1
    return labels


def selectors(expr):
    """[(metric name, [matcher label names])] queried by EXPR."""
    out, i, n = [], 0, len(expr)
    while i < n:
        c = expr[i]
        if c.isspace() or c in "()+-*/%^,=!<>":
            i += 1
        elif c in "\"'`":
            i = skip_string(expr, i)
        elif c == "[":
            i = skip_until(expr, i, "]")
        elif c == "$":
            m = re.compile(r"\$(\{[^}]*\}|\w+)").match(expr, i)
            if not m:
                raise ValueError("bad variable in %r" % expr)
            i = m.end()
        elif c == "{":
            # A selector without a name ({__name__=...}): not ours.
            raise ValueError("selector without a metric name in %r" % expr)
        elif c.isdigit() or c == ".":
            m = re.compile(r"[0-9.][0-9.a-zA-Z_]*").match(expr, i)
            i = m.end()
        elif IDENT_RE.match(c):
            m = IDENT_RE.match(expr, i)
            word, i = m.group(0), m.end()
            j = i
            while j < n and expr[j].isspace():
                j += 1
            if word in GROUPING:
                if j < n and expr[j] == "(":
                    i = skip_until(expr, j, ")")
                continue
            if word in NOT_METRICS or (j < n and expr[j] == "("):
                continue
            labels = []
            if j < n and expr[j] == "{":
                k = skip_until(expr, j, "}")
                labels = matcher_labels(expr[j + 1:k - 1])
                i = k
            out.append((word, labels))
        else:
            raise ValueError("unexpected %r in %r" % (c, expr))
    return out


def queries(dash):
    """[(where, expr)] of every panel target and template variable."""
    found, npanels = [], 0

    def walk(panels):
        nonlocal npanels
        for p in panels:
            if p.get("type") == "row":
                walk(p.get("panels", []))
                continue
            npanels += 1
            where = "panel %r" % p.get("title")
            exprs = [t.get("expr", "") for t in p.get("targets", [])]
            if not exprs or not all(e.strip() for e in exprs):
                raise SystemExit("%s has a target without a query" % where)
            found.extend((where, e) for e in exprs)
    walk(dash.get("panels", []))
    if npanels == 0:
        raise SystemExit("the dashboard has no panel")
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else q or ""
        m = re.fullmatch(r"\s*label_values\(\s*(.*?)\s*,\s*(\w+)\s*\)\s*", q)
        if m is None:
            raise SystemExit("variable %r: query %r is not label_values(METRIC, "
                             "LABEL)" % (v.get("name"), q))
        found.append(("variable %r" % v.get("name"),
                      "%s{%s=~\".*\"}" % (m.group(1), m.group(2))))
    return found, npanels


def served(path):
    """{sample name: set of label names} of a Prometheus text file."""
    names = {}
    line_re = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+\S+")
    with open(path, encoding="utf-8") as fp:
        for line in fp:
            if not line.strip() or line.startswith("#"):
                continue
            m = line_re.match(line)
            if m is None:
                raise SystemExit("%s: not a sample: %r" % (path, line))
            labels = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)=\"",
                                    m.group(3) or ""))
            names.setdefault(m.group(1), set()).update(labels)
    if not names:
        raise SystemExit("%s has no sample" % path)
    return names


def self_test():
    cases = {
        'resbus_tickets{state="open"}': [("resbus_tickets", ["state"])],
        'sum by (pool, le) (rate(a_bucket{pool=~"$pool"}[$__rate_interval]))':
            [("a_bucket", ["pool"])],
        'time() - max(b_since)': [("b_since", [])],
        'x / on (pool) group_left(le) y offset 5m > 0.5':
            [("x", []), ("y", [])],
        'histogram_quantile(0.9, sum without (instance) (rate(h[1h])))':
            [("h", [])],
        'sum(c{a="}{\\"", b!~"x"}) by (a)': [("c", ["a", "b"])],
    }
    for expr, want in cases.items():
        got = selectors(expr)
        assert got == want, (expr, got, want)
    for bad in ('{__name__="x"}', 'rate(x[5m'):
        try:
            selectors(bad)
        except ValueError:
            continue
        raise AssertionError("accepted %r" % bad)
    print("self-test: %d expressions" % len(cases))


def grafana_vars(expr):
    """EXPR with the dashboard's variables as Grafana would fill them."""
    expr = re.sub(r"\$(\{pool\}|pool\b)", ".*", expr)
    expr = re.sub(r"\$(\{__rate_interval\}|__rate_interval\b)", "1m", expr)
    if "$" in expr:
        raise ValueError("a variable left in %r" % expr)
    return expr


def run_queries(url, dash):
    found, npanels = queries(dash)
    bad = []
    for where, expr in found:
        try:
            q = grafana_vars(expr)
        except ValueError as e:
            bad.append("%s: %s" % (where, e))
            continue
        req = url.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode(
            {"query": q})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                doc = json.load(r)
        except urllib.error.HTTPError as e:
            doc = json.load(e)
        if doc.get("status") != "success":
            bad.append("%s: %s: %s" % (where, q, doc.get("error")))
            continue
        result = doc["data"]["result"]
        n = len(result) if isinstance(result, list) else 1
        print("%-3d %s" % (n, q))
        if n == 0:
            bad.append("%s: %s: no series" % (where, q))
    if bad:
        print("queries Prometheus refuses or answers with nothing:",
              file=sys.stderr)
        for b in bad:
            print("  " + b, file=sys.stderr)
        return 1
    print("%d panels, %d queries, each answered" % (npanels, len(found)))
    return 0


def main(argv):
    if argv[1:] == ["--self-test"]:
        self_test()
        return 0
    if len(argv) == 4 and argv[1] == "--prometheus":
        with open(argv[3], encoding="utf-8") as fp:
            return run_queries(argv[2], json.load(fp))
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as fp:
        dash = json.load(fp)
    metrics = served(argv[2])
    found, npanels = queries(dash)
    uses, bad = {}, []
    for where, expr in found:
        try:
            sels = selectors(expr)
        except ValueError as e:
            bad.append("%s: %s" % (where, e))
            continue
        if not sels:
            bad.append("%s: %r queries no metric" % (where, expr))
        for name, labels in sels:
            uses.setdefault(name, set()).add(where)
            if name not in metrics:
                bad.append("%s: %s is not in /metrics" % (where, name))
                continue
            for lbl in labels:
                if lbl not in metrics[name]:
                    bad.append("%s: %s has no label %s in /metrics" %
                               (where, name, lbl))
    for name in sorted(uses):
        print("%-40s in %d panels" % (name, len(uses[name])))
    if bad:
        print("the dashboard queries what /metrics does not serve:",
              file=sys.stderr)
        for b in bad:
            print("  " + b, file=sys.stderr)
        return 1
    print("%d panels, %d queries, %d metrics, all served" %
          (npanels, len(found), len(uses)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
