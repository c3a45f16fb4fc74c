/*
 * bus_priv -- what lib/bus.c (the connection) and lib/bus_methods.c (the
 * AMQP methods) share: the struct behind the public handle, the channel
 * numbers and the few helpers both call.  Nothing outside lib/bus*.c
 * includes it; callers see only bus.h.
 */
#ifndef RESBUS_BUS_PRIV_H
#define RESBUS_BUS_PRIV_H

#ifdef HAVE_RABBITMQ_C_AMQP_H
#include <rabbitmq-c/amqp.h>
#include <rabbitmq-c/ssl_socket.h>
#include <rabbitmq-c/tcp.h>
#else
#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#endif

#include "bus.h"

#define BUS_CHANNEL 1
#define BUS_PROBE_CHANNEL 2
#define BUS_FRAME_MAX 131072
#define BUS_HEARTBEAT_S 30
/* Per node: a refused connection fails at once, a silent host in this. */
#define BUS_CONNECT_TIMEOUT_S 3

struct bus_consumer {
	char *tag;
	size_t taglen;
	char *queue;
	bus_deliver_fn *fn;
	void *arg;
	bool cancelled; /* basic.cancel sent */
};

struct bus {
	amqp_connection_state_t conn;
	char *user;
	char error[512];
	bool probe_open;
	bool confirming;
	bool broken;
	bool conflict; /* a queue exists with the other type */
	size_t node;   /* index of the node in the URL list */
	uint64_t next_seq;
	uint64_t next_tag; /* bus_consume_nowait's consumer tags */
	bus_confirm_fn *confirm_fn;
	void *confirm_arg;
	struct bus_consumer *consumers; /* growable */
	size_t nconsumers;
	/* Open-addressing index of consumers by tag: slot = consumer + 1,
	 * 0 = empty; nslots is a power of two above twice nconsumers. */
	size_t *slots;
	size_t nslots;
};

/* Checks the reply of the last RPC on channel CH; 0 or -1 (bus.c). */
int bus_check(struct bus *, const char *, amqp_channel_t);

/* Registers the consumer TAG (TAGLEN bytes) of QUEUE (bus.c). */
void bus_consumer_add(
    struct bus *, const char *, size_t, const char *, bus_deliver_fn *, void *);

#endif
