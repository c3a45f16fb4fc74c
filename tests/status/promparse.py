#!/usr/bin/env python3
"""Strict parser of the Prometheus text exposition format 0.0.4.

Usage:
  promparse.py FILE [--family NAME:TYPE]...   validate FILE; print every
                                              sample as NAME{LABELS} VALUE
  promparse.py --self-test                    check the parser itself

Every line must be one of: empty; "# HELP name docstring"; "# TYPE name
type"; another comment; or a sample "name[{labels}] value [timestamp]".
Checked beyond the line grammar: the file ends with a newline, a family
has at most one HELP and one TYPE and the TYPE comes before its samples,
the samples of a family are contiguous, no series appears twice, counters
are not negative, and the families asked for with --family exist with
that type.  Exit status 0 when all is well, 1 with the reasons on stderr.
"""

import math
import re
import sys

NAME_RE = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*')
LABEL_RE = re.compile(r'[a-zA-Z_][a-zA-Z0-9_]*')
FLOAT_RE = re.compile(
    r'[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|Inf|inf|NaN|nan)$')
INT_RE = re.compile(r'-?\d+$')
TYPES = ('counter', 'gauge', 'histogram', 'summary', 'untyped')
# Samples a histogram or summary family NAME may hold besides NAME itself.
SUFFIXES = ('_bucket', '_sum', '_count')


class ParseError(Exception):
    pass


def parse_float(text, where):
    if not FLOAT_RE.match(text):
        raise ParseError('%s: bad value %r' % (where, text))
    return float(text)


def parse_label_value(line, i, where):
    """The quoted value starting at line[i] == '"'; returns (value, next i)."""
    if i >= len(line) or line[i] != '"':
        raise ParseError('%s: expected " at column %d' % (where, i + 1))
    i += 1
    out = []
    while True:
        if i >= len(line):
            raise ParseError('%s: unterminated label value' % where)
        c = line[i]
        if c == '"':
            return ''.join(out), i + 1
        if c == '\\':
            if i + 1 >= len(line):
                raise ParseError('%s: dangling backslash' % where)
            e = line[i + 1]
            if e == '\\':
                out.append('\\')
            elif e == '"':
                out.append('"')
            elif e == 'n':
                out.append('\n')
            else:
                raise ParseError('%s: bad escape \\%s in label value'
                                 % (where, e))
            i += 2
            continue
        out.append(c)
        i += 1


def skip_blank(line, i):
    while i < len(line) and line[i] in ' \t':
        i += 1
    return i


def parse_sample(line, where):
    m = NAME_RE.match(line)
    if not m:
        raise ParseError('%s: expected a metric name' % where)
    name = m.group(0)
    i = m.end()
    labels = []
    if i < len(line) and line[i] == '{':
        i += 1
        while True:
            i = skip_blank(line, i)
            if i < len(line) and line[i] == '}':
                i += 1
                break
            m = LABEL_RE.match(line, i)
            if not m:
                raise ParseError('%s: expected a label name at column %d'
                                 % (where, i + 1))
            lname = m.group(0)
            if lname.startswith('__'):
                raise ParseError('%s: reserved label name %s'
                                 % (where, lname))
            i = skip_blank(line, m.end())
            if i >= len(line) or line[i] != '=':
                raise ParseError('%s: expected = after %s' % (where, lname))
            i = skip_blank(line, i + 1)
            value, i = parse_label_value(line, i, where)
            if any(l == lname for l, _ in labels):
                raise ParseError('%s: label %s twice' % (where, lname))
            labels.append((lname, value))
            i = skip_blank(line, i)
            if i < len(line) and line[i] == ',':
                i += 1
                continue
            if i < len(line) and line[i] == '}':
                i += 1
                break
            raise ParseError('%s: expected , or } at column %d'
                             % (where, i + 1))
    if i >= len(line) or line[i] not in ' \t':
        raise ParseError('%s: expected blank before the value' % where)
    rest = line[i:].split()
    if len(rest) not in (1, 2):
        raise ParseError('%s: expected a value and an optional timestamp'
                         % where)
    value = parse_float(rest[0], where)
    if len(rest) == 2 and not INT_RE.match(rest[1]):
        raise ParseError('%s: bad timestamp %r' % (where, rest[1]))
    return name, tuple(sorted(labels)), value


def family_of(name, types):
    """The family a sample name belongs to (histograms/summaries)."""
    if name in types:
        return name
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            base = name[:-len(suffix)]
            if types.get(base) in ('histogram', 'summary'):
                return base
    return name


def parse(text):
    """Returns (types, helps, samples); raises ParseError."""
    if text and not text.endswith('\n'):
        raise ParseError('the text does not end with a newline')
    types, helps, samples = {}, {}, []
    seen_series = set()
    sampled = set()        # families (or bare names) with samples
    done_families = set()
    current = None
    for n, line in enumerate(text.split('\n')[:-1], 1):
        where = 'line %d' % n
        if line.strip() == '':
            continue
        if line.startswith('#'):
            parts = line[1:].lstrip(' \t').split(None, 2)
            if parts and parts[0] in ('HELP', 'TYPE'):
                if len(parts) < 2 or not NAME_RE.fullmatch(parts[1]):
                    raise ParseError('%s: %s without a valid metric name'
                                     % (where, parts[0]))
                fam = parts[1]
                if fam in sampled:
                    raise ParseError('%s: %s for %s after its samples'
                                     % (where, parts[0], fam))
                if parts[0] == 'HELP':
                    if fam in helps:
                        raise ParseError('%s: second HELP for %s'
                                         % (where, fam))
                    doc = parts[2] if len(parts) > 2 else ''
                    if re.search(r'\\[^\\n]|\\$', doc):
                        raise ParseError('%s: bad escape in HELP' % where)
                    helps[fam] = doc
                else:
                    if len(parts) != 3 or parts[2].strip() not in TYPES:
                        raise ParseError('%s: bad TYPE line' % where)
                    if fam in types:
                        raise ParseError('%s: second TYPE for %s'
                                         % (where, fam))
                    types[fam] = parts[2].strip()
            continue
        name, labels, value = parse_sample(line, where)
        fam = family_of(name, types)
        if fam != current:
            if current is not None:
                done_families.add(current)
            if fam in done_families:
                raise ParseError('%s: samples of %s are not together'
                                 % (where, fam))
            current = fam
        sampled.add(fam)
        sampled.add(name)
        key = (name, labels)
        if key in seen_series:
            raise ParseError('%s: series %s%s repeated'
                             % (where, name, dict(labels)))
        seen_series.add(key)
        if types.get(fam) == 'counter' and (math.isnan(value) or value < 0):
            raise ParseError('%s: counter %s is %r' % (where, name, value))
        samples.append((name, labels, value))
    return types, helps, samples


def show(name, labels, value):
    def esc(v):
        return v.replace('\\', '\\\\').replace('"', '\\"').replace('\n',
                                                                   '\\n')
    lab = ','.join('%s="%s"' % (k, esc(v)) for k, v in labels)
    if math.isnan(value):
        val = 'NaN'
    elif value == int(value) and abs(value) < 1e15:
        val = str(int(value))
    else:
        val = repr(value)
    return '%s{%s} %s' % (name, lab, val)


GOOD = [
    '',
    '# HELP a_total Things.\n# TYPE a_total counter\na_total 3\n',
    '# TYPE g gauge\ng{x="1",y="a\\"b\\\\c\\nd"} -1.5e3\ng{x="2"} NaN\n',
    'u +Inf 1395066363000\nv{} -Inf\n',
    '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\n'
    'h_sum 3\nh_count 2\n',
    '# just a comment\nm{a="b",} 1\n',
]
BAD = [
    ('no newline', 'a 1'),
    ('bad name', '1a 1\n'),
    ('bad value', 'a one\n'),
    ('bad value 2', 'a 1.2.3\n'),
    ('unterminated', 'a{x="1} 1\n'),
    ('bad escape', 'a{x="\\t"} 1\n'),
    ('label without quotes', 'a{x=1} 1\n'),
    ('reserved label', 'a{__name__="x"} 1\n'),
    ('label twice', 'a{x="1",x="2"} 1\n'),
    ('no value', 'a{x="1"}\n'),
    ('extra field', 'a 1 2 3\n'),
    ('bad timestamp', 'a 1 1.5\n'),
    ('bad type', '# TYPE a meter\na 1\n'),
    ('second type', '# TYPE a gauge\n# TYPE a gauge\na 1\n'),
    ('type after samples', 'a 1\n# TYPE a gauge\n'),
    ('second help', '# HELP a x\n# HELP a y\na 1\n'),
    ('help after samples', 'a 1\n# HELP a x\n'),
    ('bad help escape', '# HELP a x\\ty\na 1\n'),
    ('split family', 'a{x="1"} 1\nb 2\na{x="2"} 3\n'),
    ('repeated series', 'a{x="1",y="2"} 1\na{y="2",x="1"} 1\n'),
    ('negative counter', '# TYPE c_total counter\nc_total -1\n'),
    ('no blank before value', 'a{x="1"}1\n'),
]


def self_test():
    ok = True
    for text in GOOD:
        try:
            parse(text)
        except ParseError as e:
            print('self-test: rejected good input %r: %s' % (text, e),
                  file=sys.stderr)
            ok = False
    for what, text in BAD:
        try:
            parse(text)
        except ParseError:
            continue
        print('self-test: accepted bad input (%s) %r' % (what, text),
              file=sys.stderr)
        ok = False
    return ok


def main(argv):
    if argv[1:] == ['--self-test']:
        return 0 if self_test() else 1
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 1
    with open(argv[1], encoding='utf-8') as f:
        text = f.read()
    try:
        types, _, samples = parse(text)
    except ParseError as e:
        print('%s: %s' % (argv[1], e), file=sys.stderr)
        return 1
    rest = argv[2:]
    status = 0
    while rest:
        if rest[0] != '--family' or len(rest) < 2 or ':' not in rest[1]:
            print('bad arguments: %s' % ' '.join(rest), file=sys.stderr)
            return 1
        fam, typ = rest[1].split(':', 1)
        if types.get(fam) != typ:
            print('%s: family %s is %s, expected %s'
                  % (argv[1], fam, types.get(fam, 'missing'), typ),
                  file=sys.stderr)
            status = 1
        rest = rest[2:]
    for s in samples:
        print(show(*s))
    return status


if __name__ == '__main__':
    sys.exit(main(sys.argv))
