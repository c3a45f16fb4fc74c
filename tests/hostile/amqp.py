#!/usr/bin/python3
"""amqp.py -- a hostile bus user for the tests in tests/hostile/.

Publishes a hand-made resbus message as a given RabbitMQ user, with any
exchange, routing key, `type` and `user_id` property, and optionally waits
for the replies and prints them decoded.  It also peeks at a queue (the
dead-letter queue) and listens on an exchange.

The protobuf wire format is encoded and decoded here by hand (varints and
length-delimited fields, proto/resbus.proto's messages below), so the tool
needs nothing beyond python3 and Debian's python3-pika, and can write
messages that protobuf libraries refuse to make (strings that are not
UTF-8, any size).

    amqp.py URL publish TYPE [FIELDS] [options]
        FIELDS is a Python expression for a dict of the message's fields,
        e.g. "{'tags': ['demo'], 'labels': {'a': 'b'}}"; a string field
        may be bytes (b'\\xff').  Nested messages are dicts, repeated
        fields lists, maps dicts.
        --exchange X (default: the default exchange) --key K
        --key-expr E    the routing key as a Python expression of i
        --type-prop T   the AMQP type property (default resbus.v1.TYPE;
                        "" for none)
        --user-id U / --no-user-id   (default: the URL's login)
        --reply-to Q    (default with --wait: a server-named queue)
        --wait S        wait up to S seconds for the replies (answers
                        by correlation id; a pushed TicketUpdate is not
                        one)
        --repeat N      publish N messages (FIELDS may use the index i)
        --print FIELD   print only this field of each reply
        --time          print elapsed_ms=N: from the first publish to the
                        last reply
        --summary       print "COUNT TYPE MESSAGE" lines of the replies,
                        numbers in MESSAGE shown as N
    amqp.py URL peek QUEUE
        prints each message of QUEUE (type, user_id, headers, fields)
        and leaves them there.
    amqp.py URL delete-queue QUEUE
        tries to delete QUEUE.
    amqp.py URL listen EXCHANGE KEY SECONDS
        binds a server-named queue to EXCHANGE with KEY and prints what
        arrives within SECONDS.
    amqp.py URL answer QUEUE TYPE [FIELDS]
        a stand-in server: prints "answering", then answers each message
        of QUEUE with TYPE FIELDS to its reply_to and correlation id, as
        the URL's login, until killed.

Replies print as "type=resbus.v1.Error" then "field=value" lines (nested
fields as a.b=value), with a blank line after each message.

Exit status: 0 done; 3 a wait timed out; 4 RabbitMQ refused (access
refused, or another channel or connection error: the reason is printed on
stderr); 1 anything else.
"""
import argparse
import collections
import re
import sys
import time

import pika
import pika.exceptions

# ---- the protobuf messages of proto/resbus.proto -----------------------

_RESULT = [(1, 'resource', 'ResourceRef'), (2, 'ok', 'bool'),
           (3, 'exit_status', 'int'), (4, 'worker', 'string'),
           (5, 'duration_ms', 'uint')]
_JOB = [(1, 'resource', 'ResourceRef')]
SCHEMA = {
    'TicketRequest': [(1, 'idempotency_key', 'string'),
                      (2, 'tags', '*string'), (3, 'sandbox', 'string'),
                      (4, 'labels', 'map'), (5, 'class', 'string'),
                      (6, 'lease_s', 'uint'), (7, 'deadline_ms', 'int'),
                      (8, 'refuse_unprovidable', 'bool'),
                      (9, 'owner', 'string')],
    'TicketRenew': [(1, 'ticket_id', 'uint')],
    'TicketAccepted': [(1, 'ticket_id', 'uint'),
                       (2, 'idempotency_key', 'string')],
    'TicketQuery': [(1, 'ticket_id', 'uint')],
    'TicketClose': [(1, 'ticket_id', 'uint')],
    'TicketUpdate': [(1, 'ticket_id', 'uint'), (2, 'state', 'enum'),
                     (3, 'output', 'bytes'), (4, 'assigned', 'bool'),
                     (5, 'waiting_reason', 'string'), (6, 'owner', 'string'),
                     (7, 'closed_reason', 'string')],
    'Error': [(1, 'message', 'string')],
    'NamedCounter': [(1, 'name', 'string'), (2, 'value', 'uint')],
    'ResourceRef': [(1, 'resource_id', 'uint'), (2, 'pool', 'string'),
                    (3, 'name', 'string'), (4, 'id_in_pool', 'int'),
                    (5, 'counters', '*NamedCounter'), (6, 'data', 'bytes')],
    'Allocate': _JOB, 'Delete': _JOB, 'Livecheck': _JOB, 'Release': _JOB,
    'Cancel': _JOB,
    'AllocateResult': [(1, 'resource', 'ResourceRef'), (2, 'ok', 'bool'),
                       (3, 'exit_status', 'int'), (4, 'data', 'bytes'),
                       (5, 'worker', 'string'), (6, 'duration_ms', 'uint'),
                       (7, 'timed_out', 'bool')],
    'DeleteResult': _RESULT, 'LivecheckResult': _RESULT,
    'ReleaseResult': _RESULT,
    'List': [(1, 'pool', 'string'), (2, 'sweep_id', 'uint')],
    'ListResult': [(1, 'pool', 'string'), (2, 'sweep_id', 'uint'),
                   (3, 'ok', 'bool'), (4, 'names', '*string'),
                   (5, 'worker', 'string')],
    'ControlRequest': [(1, 'command', 'string'), (2, 'args', '*string'),
                       (3, 'up', 'bool'), (4, 'all', 'bool'),
                       (5, 'unused', 'bool'), (7, 'version', 'uint')],
    # The rows (fields 7 to 10) are messages of their own: skipped.
    'ControlReply': [(1, 'ok', 'bool'), (2, 'error', 'string'),
                     (5, 'version', 'uint'), (6, 'warnings', '*string')],
    '_MapEntry': [(1, 'key', 'string'), (2, 'value', 'string')],
}
STATES = ['UNKNOWN', 'OPEN', 'READY', 'FAILED', 'CLOSED']
VARINT = ('uint', 'int', 'bool', 'enum')


def varint(n):
    n &= (1 << 64) - 1          # negative int32/int64: ten bytes
    out = bytearray()
    while True:
        out.append((n & 0x7f) | (0x80 if n > 0x7f else 0))
        n >>= 7
        if not n:
            return bytes(out)


def encode(name, fields):
    """The wire form of message NAME with the values in dict FIELDS."""
    known = {f[1]: f for f in SCHEMA[name]}
    out = bytearray()
    for key, value in fields.items():
        num, _, kind = known[key]
        values = value if kind.startswith('*') else [value]
        kind = kind.lstrip('*')
        if kind == 'map':
            values = [{'key': k, 'value': v} for k, v in value.items()]
            kind = '_MapEntry'
        for v in values:
            if kind in VARINT:
                out += varint(num << 3) + varint(int(v))
                continue
            if kind in SCHEMA:
                v = encode(kind, v)
            elif isinstance(v, str):
                v = v.encode()
            out += varint(num << 3 | 2) + varint(len(v)) + v
    return bytes(out)


def decode(name, buf):
    """A dict of the fields of message NAME in BUF (unknown ones skipped)."""
    known = {f[0]: f for f in SCHEMA.get(name, [])}
    out, pos = {}, 0

    def read_varint():
        nonlocal pos
        n = shift = 0
        while True:
            b = buf[pos]
            pos += 1
            n |= (b & 0x7f) << shift
            shift += 7
            if not b & 0x80:
                return n
    while pos < len(buf):
        tag = read_varint()
        num, wire = tag >> 3, tag & 7
        if wire == 0:
            v = read_varint()
        elif wire == 2:
            n = read_varint()
            v, pos = buf[pos:pos + n], pos + n
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
            v, pos = buf[pos:pos + n], pos + n
        else:
            raise ValueError('wire type %d' % wire)
        if num not in known:
            continue
        _, fname, kind = known[num]
        rep, kind = kind.startswith('*'), kind.lstrip('*')
        if kind == 'int' and v >= 1 << 63:
            v -= 1 << 64
        elif kind == 'bool':
            v = bool(v)
        elif kind == 'enum' and name == 'TicketUpdate':
            v = STATES[v] if v < len(STATES) else v
        elif kind == 'string':
            v = v.decode('utf-8', 'backslashreplace')
        elif kind == 'map':
            e = decode('_MapEntry', v)
            out.setdefault(fname, {})[e.get('key', '')] = e.get('value', '')
            continue
        elif kind in SCHEMA:
            v = decode(kind, v)
        if rep:
            out.setdefault(fname, []).append(v)
        else:
            out[fname] = v
    return out

# ---- printing ------------------------------------------------------------


def text(v):
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode('utf-8', 'backslashreplace')
    return str(v)


def flatten(d, prefix=''):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from flatten(v, prefix + k + '.')
        elif isinstance(v, list):
            for x in v:
                if isinstance(x, dict):
                    yield from flatten(x, prefix + k + '.')
                else:
                    yield prefix + k, text(x)
        else:
            yield prefix + k, text(v)


def describe(props, body):
    """(type, fields) of a received message."""
    mtype = props.type or ''
    short = mtype.rsplit('.', 1)[-1]
    try:
        fields = decode(short, body) if short in SCHEMA else {}
    except (ValueError, IndexError):
        fields = {'undecodable': body[:64]}
    return mtype, fields


def show(props, body, only=None):
    mtype, fields = describe(props, body)
    if only is not None:
        for k, v in flatten(fields):
            if k == only:
                print(v)
        return
    print('type=' + mtype)
    if props.user_id:
        print('user_id=' + props.user_id)
    for k, v in sorted((props.headers or {}).items()):
        print('header.%s=%s' % (k, text(v)))
    for k, v in flatten(fields):
        print('%s=%s' % (k, v))
    print()

# ---- the commands --------------------------------------------------------


def login(url):
    return pika.URLParameters(url).credentials.username


def cmd_publish(ch, a):
    fields_of = eval('lambda i: ' + a.fields)   # noqa: S307 (test tool)
    key_of = eval('lambda i: ' + a.key_expr) if a.key_expr else None
    mtype = 'resbus.v1.' + a.type if a.type_prop is None else a.type_prop
    user_id = None if a.no_user_id else (a.user_id or login(a.url))
    reply_to = a.reply_to
    replies = []
    if a.wait is not None and reply_to is None:
        r = ch.queue_declare('', exclusive=True, auto_delete=True)
        reply_to = r.method.queue
        # Answers carry the request's correlation id (one of ours, or it
        # is not an answer); the TicketUpdate resbusd pushes when a ticket
        # is ready or failed carries none.
        sent = {'hostile-%d' % i for i in range(a.repeat)}
        ch.basic_consume(reply_to, lambda c, m, p, b: replies.append((p, b))
                         if p.correlation_id in sent else None,
                         auto_ack=True)
    if a.repeat == 1:
        # A refusal shows at once; a flood goes without waiting.
        ch.confirm_delivery()
    bodies = [encode(a.type, fields_of(i)) if a.type in SCHEMA else b''
              for i in range(a.repeat)]
    t0 = time.monotonic()
    for i, body in enumerate(bodies):
        props = pika.BasicProperties(
            type=mtype or None, user_id=user_id, reply_to=reply_to,
            content_type='application/x-protobuf', delivery_mode=2,
            correlation_id='hostile-%d' % i)
        ch.basic_publish(a.exchange, key_of(i) if key_of else a.key, body,
                         props)
    if a.wait is None:
        return 0
    deadline = time.monotonic() + a.wait
    while len(replies) < a.repeat and time.monotonic() < deadline:
        ch.connection.process_data_events(time_limit=0.2)
    if a.summary:
        counts = collections.Counter()
        for p, b in replies:
            mtype, fields = describe(p, b)
            msg = re.sub(r'[0-9]+', 'N', text(fields.get('message', '')))
            counts[(mtype, msg)] += 1
        for (mtype, msg), n in sorted(counts.items()):
            print(n, mtype, msg)
    else:
        for p, b in replies:
            show(p, b, a.print)
    if a.time:
        print('elapsed_ms=%d' % ((time.monotonic() - t0) * 1000))
    if len(replies) < a.repeat:
        print('amqp.py: %d of %d replies within %gs' %
              (len(replies), a.repeat, a.wait), file=sys.stderr)
        return 3
    return 0


def cmd_peek(ch, a):
    n = 0
    while True:
        method, props, body = ch.basic_get(a.queue, auto_ack=False)
        if method is None:
            break
        show(props, body)
        n += 1
    # Closing the channel without acks puts them all back.
    print('amqp.py: %d messages in %s' % (n, a.queue), file=sys.stderr)
    return 0


def cmd_listen(ch, a):
    q = ch.queue_declare('', exclusive=True, auto_delete=True).method.queue
    ch.queue_bind(q, a.exchange, routing_key=a.key)
    ch.basic_consume(q, lambda c, m, p, b: show(p, b), auto_ack=True)
    print('listening', flush=True)
    deadline = time.monotonic() + a.seconds
    while time.monotonic() < deadline:
        ch.connection.process_data_events(time_limit=0.2)
        sys.stdout.flush()
    return 0


def cmd_answer(ch, a):
    body = encode(a.type, eval(a.fields))   # noqa: S307 (test tool)

    def answer(c, m, p, b):
        c.basic_publish('', p.reply_to, body, pika.BasicProperties(
            type='resbus.v1.' + a.type, user_id=login(a.url),
            correlation_id=p.correlation_id,
            content_type='application/x-protobuf'))
        c.basic_ack(m.delivery_tag)
    ch.basic_consume(a.queue, answer)
    print('answering', flush=True)
    ch.start_consuming()
    return 0


def cmd_delete_queue(ch, a):
    ch.queue_delete(a.queue)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('url')
    sub = p.add_subparsers(dest='cmd', required=True)
    pub = sub.add_parser('publish')
    pub.add_argument('type')
    pub.add_argument('fields', nargs='?', default='{}')
    pub.add_argument('--exchange', default='')
    pub.add_argument('--key', default='')
    pub.add_argument('--key-expr')
    pub.add_argument('--type-prop')
    pub.add_argument('--user-id')
    pub.add_argument('--no-user-id', action='store_true')
    pub.add_argument('--reply-to')
    pub.add_argument('--wait', type=float)
    pub.add_argument('--repeat', type=int, default=1)
    pub.add_argument('--print')
    pub.add_argument('--summary', action='store_true')
    pub.add_argument('--time', action='store_true')
    peek = sub.add_parser('peek')
    peek.add_argument('queue')
    dq = sub.add_parser('delete-queue')
    dq.add_argument('queue')
    lis = sub.add_parser('listen')
    lis.add_argument('exchange')
    lis.add_argument('key')
    lis.add_argument('seconds', type=float)
    ans = sub.add_parser('answer')
    ans.add_argument('queue')
    ans.add_argument('type')
    ans.add_argument('fields', nargs='?', default='{}')
    a = p.parse_args()
    try:
        conn = pika.BlockingConnection(pika.URLParameters(a.url))
        ch = conn.channel()
        rc = {'publish': cmd_publish, 'peek': cmd_peek,
              'listen': cmd_listen, 'answer': cmd_answer,
              'delete-queue': cmd_delete_queue}[a.cmd](ch, a)
        conn.close()
        return rc
    except (pika.exceptions.ChannelClosedByBroker,
            pika.exceptions.ConnectionClosedByBroker,
            pika.exceptions.ProbableAccessDeniedError,
            pika.exceptions.ProbableAuthenticationError,
            pika.exceptions.UnroutableError,
            pika.exceptions.NackError) as e:
        print('amqp.py: refused: %r' % (e,), file=sys.stderr)
        return 4


if __name__ == '__main__':
    sys.exit(main())
