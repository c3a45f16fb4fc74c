#!/usr/bin/python3
"""Validates recorded resbus notifications against schemas/v1.

    validate.py SCHEMA_DIR NOTES.jsonl PREFIX KIND...

NOTES.jsonl holds one message a line as tests/status/consume prints them
(routing_key, headers, body...).  Every schema in SCHEMA_DIR must be a
valid draft 2020-12 schema whose $id ends in its file name.  Every message
must name, in fedora_messaging_schema, a schema that exists; carry that
schema's $id in its resbus_schema header; have the routing key
PREFIX.<fedora_messaging_schema>; and have a body the schema accepts.
Every KIND (resbus.ticket.ready and the like) must have been seen.
Prints one line per kind with its count; exits 1 on the first kind of
failure, listing every offending message.

    validate.py --self-test SCHEMA_DIR

checks that the schemas refuse what resbusd must never send (a field
missing, an unknown field, a wrong type, a state that is not the topic's),
so that a schema that accepts anything cannot pass the test above.
"""
import json
import os
import sys

from jsonschema import Draft202012Validator


def load_schemas(sdir):
    schemas = {}
    for f in sorted(os.listdir(sdir)):
        if not f.endswith(".json"):
            continue
        with open(os.path.join(sdir, f), encoding="utf-8") as fp:
            s = json.load(fp)
        Draft202012Validator.check_schema(s)
        if not s.get("$id", "").endswith("/" + f):
            raise SystemExit("%s: $id %r does not end in /%s" %
                             (f, s.get("$id"), f))
        if s.get("title") != f[:-len(".json")]:
            raise SystemExit("%s: title %r is not the file's name" %
                             (f, s.get("title")))
        schemas[f[:-len(".json")]] = s
    if not schemas:
        raise SystemExit("no schema in %s" % sdir)
    return schemas


def errors(schema, body):
    return [e.message for e in Draft202012Validator(schema).iter_errors(body)]


def self_test(sdir):
    schemas = load_schemas(sdir)
    ticket = {"id": 3, "state": "ready", "tags": ["a", "b"],
              "sandbox": None, "owner": "alice", "class": None,
              "resource": {"id": 7, "name": "p_00000007", "pool": "p"}}
    good = {"ticket": ticket}
    assert not errors(schemas["resbus.ticket.ready"], good), \
        errors(schemas["resbus.ticket.ready"], good)
    bad = [
        {"ticket": {k: v for k, v in ticket.items() if k != "tags"}},
        {"ticket": dict(ticket, extra=1)},
        {"ticket": dict(ticket, id="3")},
        {"ticket": dict(ticket, state="open")},
        {"ticket": dict(ticket, resource=None)},
        {"ticket": ticket, "resource": {}},
        {},
    ]
    for b in bad:
        if not errors(schemas["resbus.ticket.ready"], b):
            raise SystemExit("resbus.ticket.ready accepts %s" % json.dumps(b))
    res = {"resource": {"id": 7, "name": "p_00000007", "pool": "p",
                        "state": "up"}}
    assert not errors(schemas["resbus.resource.up"], res)
    if not errors(schemas["resbus.resource.deleted"], res):
        raise SystemExit("resbus.resource.deleted accepts state up")
    if not errors(schemas["resbus.resource.up"], good):
        raise SystemExit("resbus.resource.up accepts a ticket body")
    print("self-test: %d schemas, %d bad bodies refused" %
          (len(schemas), len(bad) + 2))


def main(argv):
    if len(argv) == 3 and argv[1] == "--self-test":
        self_test(argv[2])
        return 0
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    sdir, path, prefix, kinds = argv[1], argv[2], argv[3], argv[4:]
    schemas = load_schemas(sdir)
    seen, bad = {}, []
    with open(path, encoding="utf-8") as fp:
        notes = [json.loads(line) for line in fp if line.strip()]
    for n in notes:
        h = n.get("headers", {})
        name = h.get("fedora_messaging_schema")
        where = "%s %s" % (n.get("routing_key"), n.get("message_id"))
        if name not in schemas:
            bad.append("%s: no schema for fedora_messaging_schema %r" %
                       (where, name))
            continue
        s = schemas[name]
        if h.get("resbus_schema") != s["$id"]:
            bad.append("%s: resbus_schema %r, the schema's $id is %r" %
                       (where, h.get("resbus_schema"), s["$id"]))
        if n.get("routing_key") != prefix + "." + name:
            bad.append("%s: routing key is not %s.%s" % (where, prefix, name))
        try:
            body = json.loads(n["body"])
        except ValueError as e:
            bad.append("%s: body is not JSON (%s): %r" % (where, e, n["body"]))
            continue
        for e in errors(s, body):
            bad.append("%s: %s in %s" % (where, e, n["body"]))
        seen[name] = seen.get(name, 0) + 1
    for k in sorted(seen):
        print("%-28s %d" % (k, seen[k]))
    missing = [k for k in kinds if k not in seen]
    if bad:
        print("messages that fail their schema:", file=sys.stderr)
        for b in bad:
            print("  " + b, file=sys.stderr)
        return 1
    if missing:
        print("kinds never seen: %s (of %d messages)" %
              (" ".join(missing), len(notes)), file=sys.stderr)
        return 1
    print("%d messages, %d kinds, all valid" % (len(notes), len(seen)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
