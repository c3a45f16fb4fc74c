#!/usr/bin/python3
"""resbus_client.py -- a resbus client in Python, written from resbus-protocol(7).

Takes a ticket, waits for its outcome on its own reply queue only (no
binding to resbus.event, no TicketQuery), prints what it got, and closes
it when asked to.  A wait that hears nothing for --retry-after seconds
connects again and sends the same request again, with the same
idempotency key: resbusd answers with the same ticket, and the outcome
goes to the new reply queue.

    resbus_client.py take --tag TAG [--tag TAG...] [--sandbox S]
                     [--key KEY] [--timeout S] [--retry-after S]
                     [--hold S] [--close] [--amqp-url URL] [--prefix P]
    resbus_client.py close TICKET_ID [--amqp-url URL] [--prefix P]

take prints "ticket ID", then "ID STATE resource=RID name=NAME pool=POOL
owner=USER" and the resource's data (cmd_new's output) once the ticket is READY or
FAILED.  --hold S keeps listening for S seconds more after READY (a
resource that dies makes the ticket FAILED); --close closes it at the end.
Exit status: 0 READY (and closed, with --close), 1 FAILED or refused,
3 timed out.

Needs Debian's python3-pika and python3-protobuf, and resbus_pb2.py made
from proto/resbus.proto: protoc --python_out=DIR -I proto resbus.proto.
The AMQP URL comes from --amqp-url or RESBUS_AMQP_URL.
"""
import argparse
import os
import sys
import time
import uuid

import pika
import pika.exceptions

import resbus_pb2 as pb

CONTENT_TYPE = 'application/x-protobuf'
FINAL = (pb.TICKET_STATE_READY, pb.TICKET_STATE_FAILED)


def tagset_key(tags):
    """The canonical key of TAGS (lib/tags.c): numeric requirements lose
    their leading zeros, then sorted, duplicates dropped, joined by '+'."""
    def canonical(tag):
        i = min([tag.find(c) for c in '<>' if c in tag] or [-1])
        if i < 0:
            return tag
        j = i + 2 if tag[i + 1:i + 2] == '=' else i + 1
        return tag[:j] + str(int(tag[j:]))
    return '+'.join(sorted(set(canonical(t) for t in tags)))


class Client:
    """One connection with its exclusive reply queue."""

    def __init__(self, url, prefix):
        self.url, self.prefix = url, prefix
        self.conn = self.chan = None
        self.inbox = []

    def connect(self):
        self.close_connection()
        params = pika.URLParameters(self.url)
        self.user = params.credentials.username
        self.conn = pika.BlockingConnection(params)
        self.chan = self.conn.channel()
        # Server-named, exclusive, auto-delete: it goes with the
        # connection, and nobody else knows its name.
        r = self.chan.queue_declare('', exclusive=True, auto_delete=True)
        self.reply_queue = r.method.queue
        self.chan.basic_consume(self.reply_queue, self.on_reply,
                                auto_ack=True)
        self.chan.confirm_delivery()

    def close_connection(self):
        if self.conn is not None and self.conn.is_open:
            try:
                self.conn.close()
            except pika.exceptions.AMQPError:
                pass
        self.conn = None
        self.inbox = []

    def on_reply(self, ch, method, props, body):
        cls = getattr(pb, (props.type or '').rpartition('.')[2], None)
        if cls is None or not (props.type or '').startswith('resbus.v1.'):
            return
        msg = cls()
        msg.ParseFromString(body)
        self.inbox.append((props.correlation_id, msg))

    def publish(self, exchange, key, msg):
        """Publishes MSG with the properties resbusd needs; returns the
        correlation id its answer will carry."""
        corr = str(uuid.uuid4())
        props = pika.BasicProperties(
            type=msg.DESCRIPTOR.full_name, content_type=CONTENT_TYPE,
            reply_to=self.reply_queue, correlation_id=corr,
            user_id=self.user, delivery_mode=2)
        self.chan.basic_publish(exchange, key, msg.SerializeToString(),
                                props)
        return corr

    def next_message(self, match, seconds):
        """The first message of the inbox for which MATCH(corr, msg) is
        true, waiting up to SECONDS; None on timeout."""
        deadline = time.monotonic() + seconds
        while True:
            for i, (corr, msg) in enumerate(self.inbox):
                if match(corr, msg):
                    return self.inbox.pop(i)[1]
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.conn.process_data_events(time_limit=min(left, 0.5))

    def request(self, exchange, key, msg, seconds):
        """An RPC: the answer to MSG by correlation id, or None."""
        corr = self.publish(exchange, key, msg)
        return self.next_message(lambda c, m: c == corr, seconds)


def describe(u):
    return '%d %s resource=%d name=%s pool=%s owner=%s' % (
        u.ticket_id, pb.TicketState.Name(u.state)[len('TICKET_STATE_'):],
        u.resource_id, u.resource_name, u.resource_pool, u.owner)


def take(c, a):
    req = pb.TicketRequest(idempotency_key=a.key or str(uuid.uuid4()),
                           tags=a.tag, sandbox=a.sandbox or '')
    key = tagset_key(a.tag)
    exchange = a.prefix + '.ticket'
    deadline = time.monotonic() + a.timeout
    ticket = None
    while time.monotonic() < deadline:
        try:
            if c.conn is None:
                c.connect()
            wait = min(a.retry_after, deadline - time.monotonic())
            ans = c.request(exchange, key, req, wait)
            if isinstance(ans, pb.Error):
                print('refused: %s' % ans.message, file=sys.stderr)
                return 1, None
            if ans is None:
                raise TimeoutError('no TicketAccepted')
            if ticket is None:
                print('ticket %d' % ans.ticket_id, flush=True)
            elif ans.ticket_id != ticket:
                print('a retry got another ticket %d' % ans.ticket_id)
                return 1, ans.ticket_id
            ticket = ans.ticket_id
            wait = min(a.retry_after, deadline - time.monotonic())
            u = c.next_message(lambda corr, m: isinstance(
                m, pb.TicketUpdate) and m.ticket_id == ticket and
                m.state in FINAL, wait)
            if u is None:
                raise TimeoutError('no TicketUpdate')
            break
        except (TimeoutError, pika.exceptions.AMQPError) as e:
            # Ask again on a new connection, with the same key.
            print('retrying with key %s: %s' % (req.idempotency_key, e),
                  file=sys.stderr, flush=True)
            c.close_connection()
    else:
        print('timed out', file=sys.stderr)
        return 3, ticket
    print(describe(u), flush=True)
    sys.stdout.write(u.output.decode('utf-8', 'replace') + '\n')
    sys.stdout.flush()
    if u.state == pb.TICKET_STATE_READY and a.hold > 0:
        died = c.next_message(lambda corr, m: isinstance(
            m, pb.TicketUpdate) and m.ticket_id == ticket and
            m.state == pb.TICKET_STATE_FAILED, a.hold)
        if died is not None:
            print(describe(died), flush=True)
            u = died
    return (0 if u.state == pb.TICKET_STATE_READY else 1), ticket


def close(c, a, ticket):
    for _ in range(3):
        try:
            if c.conn is None:
                c.connect()
            ans = c.request('', a.prefix + '.request',
                            pb.TicketClose(ticket_id=ticket), a.retry_after)
        except pika.exceptions.AMQPError:
            c.close_connection()
            continue
        if isinstance(ans, pb.Error):
            print('close refused: %s' % ans.message, file=sys.stderr)
            return 1
        if isinstance(ans, pb.TicketUpdate):
            print(describe(ans), flush=True)
            return 0 if ans.state == pb.TICKET_STATE_CLOSED else 1
    print('no answer to the close of ticket %d' % ticket, file=sys.stderr)
    return 3


def main():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--amqp-url',
                        default=os.environ.get('RESBUS_AMQP_URL'))
    common.add_argument('--prefix', default='resbus')
    common.add_argument('--retry-after', type=float, default=30)
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    t = sub.add_parser('take', parents=[common])
    t.add_argument('--tag', action='append', required=True)
    t.add_argument('--sandbox')
    t.add_argument('--key', help='idempotency key (default: a fresh one)')
    t.add_argument('--timeout', type=float, default=3600)
    t.add_argument('--hold', type=float, default=0)
    t.add_argument('--close', action='store_true')
    cl = sub.add_parser('close', parents=[common])
    cl.add_argument('ticket_id', type=int)
    a = p.parse_args()
    if not a.amqp_url:
        p.error('no AMQP URL: --amqp-url or RESBUS_AMQP_URL')
    c = Client(a.amqp_url, a.prefix)
    if a.cmd == 'close':
        return close(c, a, a.ticket_id)
    rc, ticket = take(c, a)
    if a.close and ticket is not None:
        rc = close(c, a, ticket) or rc
    c.close_connection()
    return rc


if __name__ == '__main__':
    sys.exit(main())
