/*
 * rbbench -- the measuring side of `make bench` (bench/run.sh).
 *
 * One program with a subcommand per measurement, so that the floor (what
 * RabbitMQ and the stores cost by themselves) and resbus's own figures
 * are taken by the same code, with the same clock, in the same run:
 *
 *   amqp-rt URL N             raw publish -> consume -> publish back ->
 *                             consume round trip, persistent messages on
 *                             a durable queue, the echo side in a thread
 *                             of its own: p50 p99 (microseconds)
 *   amqp-rate URL N           raw message rate, one publisher connection
 *                             and one acking consumer connection on a
 *                             durable queue: messages per second
 *   commit-sqlite PATH N      one durable commit (WAL, synchronous=FULL)
 *   commit-pg CONNINFO N      one durable commit on PostgreSQL
 *   ready URL TAG N           TicketRequest -> READY event latency with a
 *                             free resource: p50 p90 p99 max (us)
 *   cycles URL TAG CLIENTS S  take, wait, close with CLIENTS threads of
 *                             their own connection for S seconds:
 *                             cycles/s, cycles, p50 and p99 of a cycle
 *   load URL TAG N            N tickets through pipelined requests:
 *                             accepted, tickets/s
 *   take URL TAG TIMEOUT_S    one ticket; prints the wall clock (ns) at
 *                             which it was accepted
 *
 * Each prints one line of numbers on stdout for the script to read, and
 * says what failed on stderr with exit status 1.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "bus.h"
#include "client.h"
#include "log.h"
#include "msg.h"
#include "topo.h"
#include "util.h"

#define BENCH_PREFIX RESBUS_DEFAULT_PREFIX
#define BENCH_RT_QUEUE "bench.rt"
#define BENCH_RATE_QUEUE "bench.rate"

static void bench_die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void
bench_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("rbbench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
i64_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* The Q-quantile (0..1) of the N samples in V, sorting V. */
static int64_t
quantile(int64_t *v, size_t n, double q)
{
	size_t i;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), i64_cmp);
	i = (size_t)(q * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static long
parse_count(const char *s)
{
	char *end;
	long n = strtol(s, &end, 10);

	if (*end != '\0' || n <= 0)
		bench_die("bad count '%s'", s);
	return n;
}

static struct bus *
bench_connect(const char *url, const char *name)
{
	char err[512];
	struct bus *bus = bus_connect(url, name, err, sizeof(err));

	if (bus == NULL)
		bench_die("connect: %s", err);
	return bus;
}

/* Polls BUS until *DONE is true; dies after TIMEOUT_MS. */
static void
bench_pump(struct bus *bus, const bool *done, int timeout_ms)
{
	int64_t deadline = now_us() + (int64_t)timeout_ms * 1000;

	while (!*done) {
		if (bus_poll(bus, 100) == -1)
			bench_die("poll: %s", bus_error(bus));
		if (!*done && now_us() > deadline)
			bench_die("no message within %d ms", timeout_ms);
	}
}

/* ---- raw AMQP round trip ----------------------------------------------- */

struct rt_state {
	struct bus *echo;             /* the far side */
	bool got;                     /* the round trip came back */
	atomic_bool stop;             /* tells the echo thread to end */
};

/* The far side: publish what arrived back to its reply_to queue. */
static void
rt_echo(struct bus *bus, const struct bus_delivery *d, void *arg)
{
	struct bus_props p;

	memset(&p, 0, sizeof(p));
	p.type = d->type;
	p.correlation_id = d->correlation_id;
	p.persistent = true;
	if (bus_publish(bus, "", d->reply_to, &p, d->body, d->len, NULL) == -1)
		bench_die("echo publish: %s", bus_error(bus));
	if (bus_ack(bus, d->delivery_tag) == -1)
		bench_die("ack: %s", bus_error(bus));
}

static void
rt_back(struct bus *bus, const struct bus_delivery *d, void *arg)
{
	struct rt_state *st = arg;

	st->got = true;
}

/* The far side runs in a thread of its own, as a broker would. */
static void *
rt_echo_thread(void *arg)
{
	struct rt_state *st = arg;

	while (!atomic_load(&st->stop))
		if (bus_poll(st->echo, 100) == -1)
			bench_die("echo poll: %s", bus_error(st->echo));
	return NULL;
}

static int
cmd_amqp_rt(const char *url, long n)
{
	struct bus *a = bench_connect(url, "rbbench rt client");
	struct bus *b = bench_connect(url, "rbbench rt echo");
	struct rt_state st = { .echo = b };
	struct bus_props p;
	char body[64], *reply = NULL;
	int64_t *v = xcalloc((size_t)n, sizeof(*v)), t0;
	long i, warm = n / 10 + 10;
	pthread_t echo;

	if (bus_queue_declare(b, BENCH_RT_QUEUE, BUS_DURABLE, NULL, NULL,
	    NULL) == -1 || bus_qos(b, 100) == -1 ||
	    bus_consume(b, BENCH_RT_QUEUE, false, rt_echo, &st) == -1)
		bench_die("echo side: %s", bus_error(b));
	if (bus_queue_declare(a, "", BUS_EXCLUSIVE | BUS_AUTO_DELETE, &reply,
	    NULL, NULL) == -1 || bus_consume(a, reply, true, rt_back, &st) == -1)
		bench_die("client side: %s", bus_error(a));
	if (pthread_create(&echo, NULL, rt_echo_thread, &st) != 0)
		bench_die("pthread_create");
	memset(&p, 0, sizeof(p));
	p.type = "bench.Ping";
	p.reply_to = reply;
	p.correlation_id = "rt";
	p.persistent = true;
	memset(body, 'x', sizeof(body));
	for (i = -warm; i < n; i++) {
		st.got = false;
		t0 = now_us();
		if (bus_publish(a, "", BENCH_RT_QUEUE, &p, body, sizeof(body),
		    NULL) == -1)
			bench_die("publish: %s", bus_error(a));
		while (!st.got)
			if (bus_poll(a, 1000) == -1)
				bench_die("poll: %s", bus_error(a));
		if (i >= 0)
			v[i] = now_us() - t0;
	}
	atomic_store(&st.stop, true);
	pthread_join(echo, NULL);
	printf("%" PRId64, quantile(v, (size_t)n, 0.5));
	printf(" %" PRId64 "\n", quantile(v, (size_t)n, 0.99));
	free(v);
	free(reply);
	bus_free(a);
	bus_free(b);
	return 0;
}

/* ---- raw AMQP message rate --------------------------------------------- */

struct rate_state {
	const char *url;
	long n;
	long got;
	int64_t t_last;
};

static void
rate_recv(struct bus *bus, const struct bus_delivery *d, void *arg)
{
	struct rate_state *st = arg;

	if (bus_ack(bus, d->delivery_tag) == -1)
		bench_die("ack: %s", bus_error(bus));
	st->got++;
	st->t_last = now_us();
}

static void *
rate_consumer(void *arg)
{
	struct rate_state *st = arg;
	struct bus *c = bench_connect(st->url, "rbbench rate consumer");

	if (bus_qos(c, 1000) == -1 ||
	    bus_consume(c, BENCH_RATE_QUEUE, false, rate_recv, st) == -1)
		bench_die("consumer: %s", bus_error(c));
	while (st->got < st->n)
		if (bus_poll(c, 1000) == -1)
			bench_die("consumer poll: %s", bus_error(c));
	bus_free(c);
	return NULL;
}

static int
cmd_amqp_rate(const char *url, long n)
{
	struct bus *pub = bench_connect(url, "rbbench rate publisher");
	struct rate_state st = { .url = url, .n = n };
	struct bus_props p;
	char body[128];
	pthread_t th;
	int64_t t0;
	long i;

	if (bus_queue_declare(pub, BENCH_RATE_QUEUE, BUS_DURABLE, NULL, NULL,
	    NULL) == -1)
		bench_die("declare: %s", bus_error(pub));
	if (pthread_create(&th, NULL, rate_consumer, &st) != 0)
		bench_die("pthread_create");
	usleep(200000);           /* the consumer is up */
	memset(&p, 0, sizeof(p));
	p.type = "bench.Rate";
	p.persistent = true;
	memset(body, 'x', sizeof(body));
	t0 = now_us();
	for (i = 0; i < n; i++)
		if (bus_publish(pub, "", BENCH_RATE_QUEUE, &p, body,
		    sizeof(body), NULL) == -1)
			bench_die("publish: %s", bus_error(pub));
	pthread_join(th, NULL);
	printf("%.0f\n", (double)n * 1e6 / (double)(st.t_last - t0));
	bus_free(pub);
	return 0;
}

/* ---- durable commits --------------------------------------------------- */

static int
cmd_commit_sqlite(const char *path, long n)
{
	sqlite3 *db;
	sqlite3_stmt *ins;
	int64_t *v = xcalloc((size_t)n, sizeof(*v)), t0;
	long i;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		bench_die("sqlite %s: %s", path, sqlite3_errmsg(db));
	if (sqlite3_exec(db, "PRAGMA journal_mode = WAL; "
	    "PRAGMA synchronous = FULL; "
	    "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB)",
	    NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO t (v) VALUES (?)", -1, &ins,
	    NULL) != SQLITE_OK)
		bench_die("sqlite: %s", sqlite3_errmsg(db));
	for (i = 0; i < n; i++) {
		t0 = now_us();
		if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
			bench_die("sqlite: %s", sqlite3_errmsg(db));
		sqlite3_bind_zeroblob(ins, 1, 100);
		if (sqlite3_step(ins) != SQLITE_DONE)
			bench_die("sqlite: %s", sqlite3_errmsg(db));
		sqlite3_reset(ins);
		if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			bench_die("sqlite: %s", sqlite3_errmsg(db));
		v[i] = now_us() - t0;
	}
	printf("%" PRId64, quantile(v, (size_t)n, 0.5));
	printf(" %" PRId64 "\n", quantile(v, (size_t)n, 0.99));
	sqlite3_finalize(ins);
	sqlite3_close(db);
	free(v);
	return 0;
}

static void
pg_exec(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		bench_die("postgresql: %s: %s", sql, PQerrorMessage(c));
	PQclear(r);
}

static int
cmd_commit_pg(const char *conninfo, long n)
{
	PGconn *c = PQconnectdb(conninfo);
	PGresult *r;
	int64_t *v = xcalloc((size_t)n, sizeof(*v)), t0;
	long i;

	if (PQstatus(c) != CONNECTION_OK)
		bench_die("postgresql: %s", PQerrorMessage(c));
	r = PQexec(c, "SHOW fsync");
	if (PQresultStatus(r) != PGRES_TUPLES_OK ||
	    strcmp(PQgetvalue(r, 0, 0), "on") != 0)
		bench_die("postgresql: fsync is not on");
	PQclear(r);
	pg_exec(c, "CREATE TABLE IF NOT EXISTS bench_commit "
	    "(id bigserial PRIMARY KEY, v bytea)");
	for (i = 0; i < n; i++) {
		t0 = now_us();
		pg_exec(c, "BEGIN");
		pg_exec(c, "INSERT INTO bench_commit (v) "
		    "VALUES (decode(repeat('00', 100), 'hex'))");
		pg_exec(c, "COMMIT");
		v[i] = now_us() - t0;
	}
	printf("%" PRId64, quantile(v, (size_t)n, 0.5));
	printf(" %" PRId64 "\n", quantile(v, (size_t)n, 0.99));
	pg_exec(c, "DROP TABLE bench_commit");
	PQfinish(c);
	free(v);
	return 0;
}

/* ---- tickets on the bus, without the client library ------------------- */

#define READY_RING 64

/* A connection that publishes TicketRequests and listens for answers. */
struct tix {
	struct bus *bus;
	char *reply_queue;
	char *event_queue;
	char *ticket_exchange;
	char *request_queue;
	char *event_exchange;
	/* answers */
	long accepted;
	uint64_t last_id;             /* of the last TicketAccepted */
	long refused;
	bool close_done;
	/* READY events seen: (id, arrival time) */
	uint64_t ready_id[READY_RING];
	int64_t ready_us[READY_RING];
	size_t nready;
};

static void
tix_deliver(struct bus *bus, const struct bus_delivery *d, void *arg)
{
	struct tix *x = arg;
	ProtobufCMessage *m;
	int64_t t = now_us();

	if (d->type == NULL ||
	    (m = msg_unpack(d->type, d->body, d->len)) == NULL)
		return;
	if (m->descriptor == &resbus__v1__ticket_accepted__descriptor) {
		x->accepted++;
		x->last_id = ((Resbus__V1__TicketAccepted *)m)->ticket_id;
	} else if (m->descriptor == &resbus__v1__error__descriptor) {
		x->refused++;
		fprintf(stderr, "rbbench: refused: %s\n",
		    ((Resbus__V1__Error *)m)->message);
	} else if (m->descriptor == &resbus__v1__ticket_update__descriptor) {
		Resbus__V1__TicketUpdate *u = (Resbus__V1__TicketUpdate *)m;

		if (d->exchange != NULL &&
		    strcmp(d->exchange, x->event_exchange) == 0) {
			size_t i = x->nready++ % READY_RING;

			x->ready_id[i] = u->ticket_id;
			x->ready_us[i] = t;
		} else if (d->correlation_id != NULL &&
		    d->correlation_id[0] != '\0') {
			/* The answer to the close; the update pushed when
			 * the ticket became READY carries no correlation id. */
			x->close_done = true;
		}
	}
	msg_free(m);
}

static void
tix_open(struct tix *x, const char *url, bool events)
{
	memset(x, 0, sizeof(*x));
	x->bus = bench_connect(url, "rbbench tickets");
	x->ticket_exchange = topo_ticket_exchange(BENCH_PREFIX);
	x->request_queue = topo_request_queue(BENCH_PREFIX);
	x->event_exchange = topo_event_exchange(BENCH_PREFIX);
	/* resbusd declared it, with its queue_type; only if it has not,
	 * with RESBUS_QUEUE_TYPE's. */
	if (topo_ensure_core(x->bus, BENCH_PREFIX,
	    topo_queue_flags(getenv("RESBUS_QUEUE_TYPE"))) == -1 ||
	    bus_queue_declare(x->bus, "", BUS_EXCLUSIVE | BUS_AUTO_DELETE,
	    &x->reply_queue, NULL, NULL) == -1 ||
	    bus_consume(x->bus, x->reply_queue, true, tix_deliver, x) == -1)
		bench_die("set-up: %s", bus_error(x->bus));
	if (!events)
		return;
	/* Bound before the first request, so no READY can slip by. */
	if (bus_queue_declare(x->bus, "", BUS_EXCLUSIVE | BUS_AUTO_DELETE,
	    &x->event_queue, NULL, NULL) == -1 ||
	    bus_queue_bind(x->bus, x->event_queue, x->event_exchange,
	    "ticket.*.ready") == -1 ||
	    bus_consume(x->bus, x->event_queue, true, tix_deliver, x) == -1)
		bench_die("event queue: %s", bus_error(x->bus));
}

static void
tix_close(struct tix *x)
{
	bus_free(x->bus);
	free(x->reply_queue);
	free(x->event_queue);
	free(x->ticket_exchange);
	free(x->request_queue);
	free(x->event_exchange);
}

static void
tix_send(struct tix *x, const char *exchange, const char *key,
    const ProtobufCMessage *m, const char *corr)
{
	struct bus_props p;
	size_t len;
	void *body = msg_pack(m, &len);

	memset(&p, 0, sizeof(p));
	p.type = msg_type(m);
	p.content_type = MSG_CONTENT_TYPE;
	p.reply_to = x->reply_queue;
	p.correlation_id = corr;
	p.user_id = bus_user(x->bus);
	p.persistent = true;
	if (bus_publish(x->bus, exchange, key, &p, body, len, NULL) == -1)
		bench_die("publish: %s", bus_error(x->bus));
	free(body);
}

/* Publishes a TicketRequest for the one-tag set TAG. */
static void
tix_request(struct tix *x, const char *tag, const char *idem)
{
	Resbus__V1__TicketRequest req = RESBUS__V1__TICKET_REQUEST__INIT;
	char *tags[1] = { (char *)tag };

	req.idempotency_key = (char *)idem;
	req.n_tags = 1;
	req.tags = tags;
	tix_send(x, x->ticket_exchange, tag, &req.base, idem);
}

static void
tix_ticket_close(struct tix *x, uint64_t id)
{
	Resbus__V1__TicketClose m = RESBUS__V1__TICKET_CLOSE__INIT;

	m.ticket_id = id;
	x->close_done = false;
	tix_send(x, "", x->request_queue, &m.base, "close");
	bench_pump(x->bus, &x->close_done, 30000);
}

/* When the READY event of ticket ID arrived, or -1 if not yet. */
static int64_t
tix_ready_at(const struct tix *x, uint64_t id)
{
	size_t i, n = x->nready < READY_RING ? x->nready : READY_RING;

	for (i = 0; i < n; i++)
		if (x->ready_id[i] == id)
			return x->ready_us[i];
	return -1;
}

static int
cmd_ready(const char *url, const char *tag, long n)
{
	struct tix x;
	char idem[96];
	int64_t *v = xcalloc((size_t)n, sizeof(*v)), t0, t1, deadline;
	long i, warm = 20;
	uint64_t id;

	tix_open(&x, url, true);
	for (i = -warm; i < n; i++) {
		long before = x.accepted;

		snprintf(idem, sizeof(idem), "bench-ready-%ld-%ld",
		    (long)getpid(), i);
		t0 = now_us();
		tix_request(&x, tag, idem);
		deadline = t0 + 30000000;
		while (x.accepted == before || tix_ready_at(&x, x.last_id) < 0) {
			if (x.refused > 0)
				bench_die("ticket refused");
			if (bus_poll(x.bus, 100) == -1)
				bench_die("poll: %s", bus_error(x.bus));
			if (now_us() > deadline)
				bench_die("ticket %ld not READY within 30 s", i);
		}
		id = x.last_id;
		t1 = tix_ready_at(&x, id);
		if (i >= 0)
			v[i] = t1 - t0;
		tix_ticket_close(&x, id);
		/* Let the pool put a free resource back (not timed). */
		usleep(2000);
	}
	printf("%" PRId64, quantile(v, (size_t)n, 0.5));
	printf(" %" PRId64, quantile(v, (size_t)n, 0.9));
	printf(" %" PRId64, quantile(v, (size_t)n, 0.99));
	printf(" %" PRId64 "\n", v[n - 1]);
	tix_close(&x);
	free(v);
	return 0;
}

static int
cmd_load(const char *url, const char *tag, long n)
{
	struct tix x;
	char idem[96];
	int64_t t0;
	long i, window = 2000;

	tix_open(&x, url, false);
	t0 = now_us();
	for (i = 0; i < n; i++) {
		snprintf(idem, sizeof(idem), "bench-load-%ld-%ld",
		    (long)getpid(), i);
		tix_request(&x, tag, idem);
		while (i + 1 - x.accepted - x.refused >= window)
			if (bus_poll(x.bus, 100) == -1)
				bench_die("poll: %s", bus_error(x.bus));
	}
	while (x.accepted + x.refused < n) {
		int64_t before = x.accepted + x.refused, t = now_us();

		while (x.accepted + x.refused == before) {
			if (bus_poll(x.bus, 100) == -1)
				bench_die("poll: %s", bus_error(x.bus));
			if (now_us() - t > 60000000)
				bench_die("no answer for 60 s (%ld of %ld)",
				    x.accepted, n);
		}
	}
	printf("%ld %.0f\n", x.accepted,
	    (double)x.accepted * 1e6 / (double)(now_us() - t0));
	tix_close(&x);
	return x.refused > 0;
}

static int
cmd_take(const char *url, const char *tag, long timeout_s)
{
	struct tix x;
	char idem[96];
	struct timespec ts;
	int64_t deadline;

	tix_open(&x, url, false);
	snprintf(idem, sizeof(idem), "bench-take-%ld-%lld", (long)getpid(),
	    (long long)now_wall_ms());
	tix_request(&x, tag, idem);
	deadline = now_us() + timeout_s * 1000000;
	while (x.accepted == 0 && x.refused == 0) {
		if (bus_poll(x.bus, 10) == -1)
			bench_die("poll: %s", bus_error(x.bus));
		if (now_us() > deadline)
			bench_die("no answer within %ld s", timeout_s);
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	printf("%lld\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	tix_close(&x);
	return x.refused > 0;
}

/* ---- full cycles through the client library --------------------------- */

struct cycles_shared {
	const char *url;
	const char *tag;
	int64_t start_us, end_us;
	pthread_mutex_t mu;
	int64_t *lat;                 /* cycle times */
	size_t nlat, cap;
	long errors;
};

static void *
cycles_client(void *arg)
{
	struct cycles_shared *sh = arg;
	struct resbus_client *c;
	struct resbus_ticket_info info;
	char err[512], *tags[1] = { (char *)sh->tag };
	bool timed_out;
	uint64_t id;
	int64_t t0, t1;

	if ((c = resbus_client_new(sh->url, NULL, err, sizeof(err))) == NULL)
		bench_die("client: %s", err);
	while ((t0 = now_us()) < sh->start_us)
		usleep((useconds_t)(sh->start_us - t0));
	while (now_us() < sh->end_us) {
		t0 = now_us();
		if (resbus_ticket_take(c, tags, 1, NULL, 30000, &id,
		    &timed_out) == -1 ||
		    resbus_ticket_wait(c, id, 30000, &info, &timed_out) == -1) {
			fprintf(stderr, "rbbench: cycle: %s\n",
			    resbus_client_error(c));
			pthread_mutex_lock(&sh->mu);
			sh->errors++;
			pthread_mutex_unlock(&sh->mu);
			break;
		}
		resbus_ticket_info_clear(&info);
		if (resbus_ticket_close(c, id, 30000) == -1) {
			fprintf(stderr, "rbbench: close: %s\n",
			    resbus_client_error(c));
			pthread_mutex_lock(&sh->mu);
			sh->errors++;
			pthread_mutex_unlock(&sh->mu);
			break;
		}
		t1 = now_us();
		pthread_mutex_lock(&sh->mu);
		if (t1 <= sh->end_us) {
			if (sh->nlat == sh->cap) {
				sh->cap = sh->cap ? sh->cap * 2 : 1024;
				sh->lat = xrealloc(sh->lat,
				    sh->cap * sizeof(*sh->lat));
			}
			sh->lat[sh->nlat++] = t1 - t0;
		}
		pthread_mutex_unlock(&sh->mu);
	}
	resbus_client_free(c);
	return NULL;
}

static int
cmd_cycles(const char *url, const char *tag, long nclients, long seconds)
{
	struct cycles_shared sh;
	pthread_t *th = xcalloc((size_t)nclients, sizeof(*th));
	long i;
	size_t n;

	memset(&sh, 0, sizeof(sh));
	sh.url = url;
	sh.tag = tag;
	pthread_mutex_init(&sh.mu, NULL);
	/* Every client connects first; the clock starts together. */
	sh.start_us = now_us() + 1000000;
	sh.end_us = sh.start_us + seconds * 1000000;
	for (i = 0; i < nclients; i++)
		if (pthread_create(&th[i], NULL, cycles_client, &sh) != 0)
			bench_die("pthread_create");
	for (i = 0; i < nclients; i++)
		pthread_join(th[i], NULL);
	n = sh.nlat;
	printf("%.1f %zu", (double)n / (double)seconds, n);
	printf(" %" PRId64, quantile(sh.lat, n, 0.5));
	printf(" %" PRId64 " %ld\n", quantile(sh.lat, n, 0.99), sh.errors);
	free(sh.lat);
	free(th);
	return sh.errors > 0;
}

static void usage(void) __attribute__((noreturn));

static void
usage(void)
{
	fprintf(stderr,
	    "usage: rbbench amqp-rt URL N | amqp-rate URL N |\n"
	    "               commit-sqlite PATH N | commit-pg CONNINFO N |\n"
	    "               ready URL TAG N | cycles URL TAG CLIENTS SECONDS |\n"
	    "               load URL TAG N | take URL TAG TIMEOUT_S\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	log_init("rbbench", LOG_LEVEL_WARN);
	if (argc < 2)
		usage();
	if (strcmp(argv[1], "amqp-rt") == 0 && argc == 4)
		return cmd_amqp_rt(argv[2], parse_count(argv[3]));
	if (strcmp(argv[1], "amqp-rate") == 0 && argc == 4)
		return cmd_amqp_rate(argv[2], parse_count(argv[3]));
	if (strcmp(argv[1], "commit-sqlite") == 0 && argc == 4)
		return cmd_commit_sqlite(argv[2], parse_count(argv[3]));
	if (strcmp(argv[1], "commit-pg") == 0 && argc == 4)
		return cmd_commit_pg(argv[2], parse_count(argv[3]));
	if (strcmp(argv[1], "ready") == 0 && argc == 5)
		return cmd_ready(argv[2], argv[3], parse_count(argv[4]));
	if (strcmp(argv[1], "cycles") == 0 && argc == 6)
		return cmd_cycles(argv[2], argv[3], parse_count(argv[4]),
		    parse_count(argv[5]));
	if (strcmp(argv[1], "load") == 0 && argc == 5)
		return cmd_load(argv[2], argv[3], parse_count(argv[4]));
	if (strcmp(argv[1], "take") == 0 && argc == 5)
		return cmd_take(argv[2], argv[3], parse_count(argv[4]));
	usage();
}
