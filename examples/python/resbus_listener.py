#!/usr/bin/python3
"""resbus_listener.py -- prints resbus's notifications, as fedora-messaging's
`fedora-messaging consume` with its printer callback would.

resbusd with `notify: true` (resbus-server.yaml(5)) publishes a JSON
message to its notify_exchange (amq.topic) for each ticket that opens,
becomes ready, fails or closes, and each resource that starts, comes up or
is deleted, under the topic <notify_topic_prefix>.resbus.<object>.<what>.
This listener binds a queue of its own to those topics and prints one
line per message:

    TOPIC user=OWNER severity=N {"ticket": {...}}

    resbus_listener.py [--amqp-url URL] [--exchange amq.topic]
                       [--topic 'org.resbus.resbus.#'] [--seconds S]

--seconds S stops after S seconds (default: run until interrupted).  It
prints "listening" once its queue is bound.  Needs only Debian's
python3-pika: the bodies are JSON, the headers say who and how severe.
"""
import argparse
import json
import os
import sys
import time

import pika


def on_message(ch, method, props, body):
    headers = props.headers or {}
    users = [k[len('fedora_messaging_user_'):] for k in headers
             if k.startswith('fedora_messaging_user_')]
    try:
        msg = json.loads(body.decode('utf-8'))
    except ValueError:
        msg = {'undecodable': body[:200].decode('utf-8', 'replace')}
    print('%s user=%s severity=%s %s' % (
        method.routing_key, ','.join(users) or '-',
        headers.get('fedora_messaging_severity', '-'),
        json.dumps(msg, sort_keys=True)), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--amqp-url', default=os.environ.get('RESBUS_AMQP_URL'))
    p.add_argument('--exchange', default='amq.topic')
    p.add_argument('--topic', default='org.resbus.resbus.#')
    p.add_argument('--seconds', type=float)
    a = p.parse_args()
    if not a.amqp_url:
        p.error('no AMQP URL: --amqp-url or RESBUS_AMQP_URL')
    conn = pika.BlockingConnection(pika.URLParameters(a.amqp_url))
    ch = conn.channel()
    q = ch.queue_declare('', exclusive=True, auto_delete=True).method.queue
    ch.queue_bind(q, a.exchange, routing_key=a.topic)
    ch.basic_consume(q, on_message, auto_ack=True)
    print('listening', flush=True)
    deadline = None if a.seconds is None else time.monotonic() + a.seconds
    try:
        while deadline is None or time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.5)
    except KeyboardInterrupt:
        pass
    conn.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
