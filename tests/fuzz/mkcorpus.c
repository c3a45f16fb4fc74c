/*
 * mkcorpus -- writes fuzz_msg's seed inputs.
 *
 *   tests/fuzz/mkcorpus DIR
 *
 * One file per seed in DIR: the fuzz_types.h index of the message type,
 * then the packed message.  A valid message of every type, and the
 * messages that once took the broker down: many long labels, a
 * non-UTF-8 idempotency key, oversize resource data, a ListResult with
 * thousands of names.  Each file stays under 100 KB.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_types.h"
#include "msg.h"
#include "tags.h"
#include "util.h"

static const char *out_dir;

static void
seed_write(const char *name, const ProtobufCMessage *m)
{
	char path[4096];
	unsigned char idx;
	void *buf;
	size_t i, len;
	FILE *fp;

	for (i = 0; i < FUZZ_NTYPES; i++)
		if (fuzz_types[i] == m->descriptor)
			break;
	if (i == FUZZ_NTYPES) {
		fprintf(stderr, "mkcorpus: %s: type not in fuzz_types.h\n",
		    name);
		exit(1);
	}
	idx = (unsigned char)i;
	buf = msg_pack(m, &len);
	snprintf(path, sizeof(path), "%s/%s", out_dir, name);
	if ((fp = fopen(path, "wb")) == NULL ||
	    fwrite(&idx, 1, 1, fp) != 1 ||
	    (len > 0 && fwrite(buf, len, 1, fp) != 1) || fclose(fp) != 0) {
		perror(path);
		exit(1);
	}
	free(buf);
}

static Resbus__V1__NamedCounter counter = RESBUS__V1__NAMED_COUNTER__INIT;
static Resbus__V1__NamedCounter *counters[] = {&counter};
static Resbus__V1__ResourceRef ref = RESBUS__V1__RESOURCE_REF__INIT;

static void
seeds_valid(void)
{
	static char *tags[] = {"x86_64", "fedora", "memory>=32"};
	static char *args[] = {"12", "vm-3"};
	static char *names[] = {"copr_pool_1_20240101", "copr_pool_2_2024"};
	static char *warnings[] = {"resource 13 is not an UP resource; not "
				   "deleted"};
	static char *rtags[] = {"x86_64", "fedora"};
	Resbus__V1__TicketRequest__LabelsEntry l1 =
	    RESBUS__V1__TICKET_REQUEST__LABELS_ENTRY__INIT;
	Resbus__V1__TicketRequest__LabelsEntry *labels[] = {&l1};
	Resbus__V1__TicketRequest tr = RESBUS__V1__TICKET_REQUEST__INIT;
	Resbus__V1__TicketRenew rn = RESBUS__V1__TICKET_RENEW__INIT;
	Resbus__V1__TicketAccepted ta = RESBUS__V1__TICKET_ACCEPTED__INIT;
	Resbus__V1__TicketQuery tq = RESBUS__V1__TICKET_QUERY__INIT;
	Resbus__V1__TicketClose tc = RESBUS__V1__TICKET_CLOSE__INIT;
	Resbus__V1__TicketUpdate tu = RESBUS__V1__TICKET_UPDATE__INIT;
	Resbus__V1__Error er = RESBUS__V1__ERROR__INIT;
	Resbus__V1__Allocate al = RESBUS__V1__ALLOCATE__INIT;
	Resbus__V1__Delete de = RESBUS__V1__DELETE__INIT;
	Resbus__V1__AllocateResult ar = RESBUS__V1__ALLOCATE_RESULT__INIT;
	Resbus__V1__DeleteResult dr = RESBUS__V1__DELETE_RESULT__INIT;
	Resbus__V1__Livecheck lc = RESBUS__V1__LIVECHECK__INIT;
	Resbus__V1__LivecheckResult lr = RESBUS__V1__LIVECHECK_RESULT__INIT;
	Resbus__V1__Release re = RESBUS__V1__RELEASE__INIT;
	Resbus__V1__ReleaseResult rr = RESBUS__V1__RELEASE_RESULT__INIT;
	Resbus__V1__List li = RESBUS__V1__LIST__INIT;
	Resbus__V1__ListResult lt = RESBUS__V1__LIST_RESULT__INIT;
	Resbus__V1__Cancel ca = RESBUS__V1__CANCEL__INIT;
	Resbus__V1__ControlRequest cq = RESBUS__V1__CONTROL_REQUEST__INIT;
	Resbus__V1__ControlReply cr = RESBUS__V1__CONTROL_REPLY__INIT;
	Resbus__V1__ControlResource cres = RESBUS__V1__CONTROL_RESOURCE__INIT;
	Resbus__V1__ControlTicket ct = RESBUS__V1__CONTROL_TICKET__INIT;
	Resbus__V1__ControlPool cp = RESBUS__V1__CONTROL_POOL__INIT;
	Resbus__V1__ControlBroker cb = RESBUS__V1__CONTROL_BROKER__INIT;
	Resbus__V1__ControlStandby cs = RESBUS__V1__CONTROL_STANDBY__INIT;
	Resbus__V1__ControlResource *cress[] = {&cres};
	Resbus__V1__ControlTicket *cts[] = {&ct};
	Resbus__V1__ControlPool *cps[] = {&cp};
	Resbus__V1__ControlStandby *css[] = {&cs};

	counter.name = "slot";
	counter.value = 3;
	ref.resource_id = 12;
	ref.pool = "copr_pool";
	ref.name = "copr_pool_12_20240101";
	ref.id_in_pool = 2;
	ref.n_counters = 1;
	ref.counters = counters;
	ref.data.data = (uint8_t *)"IP=192.0.2.12\n";
	ref.data.len = strlen("IP=192.0.2.12\n");

	l1.key = "owner";
	l1.value = "alice";
	tr.idempotency_key = "4f1c2a7e-09b1-4d55-a1b3-2f0c1d9e8a77";
	tr.n_tags = 3;
	tr.tags = tags;
	tr.sandbox = "alice/project/fedora-39-x86_64";
	tr.n_labels = 1;
	tr.labels = labels;
	tr.class_ = "interactive";
	tr.lease_s = 600;
	tr.deadline_ms = 1700000000000;
	seed_write("ticket-request", &tr.base);
	rn.ticket_id = 7;
	seed_write("ticket-renew", &rn.base);
	ta.ticket_id = 7;
	ta.idempotency_key = tr.idempotency_key;
	seed_write("ticket-accepted", &ta.base);
	tq.ticket_id = 7;
	seed_write("ticket-query", &tq.base);
	tc.ticket_id = 7;
	seed_write("ticket-close", &tc.base);
	tu.ticket_id = 7;
	tu.state = RESBUS__V1__TICKET_STATE__TICKET_STATE_READY;
	tu.output = ref.data;
	tu.assigned = 1;
	tu.waiting_reason = "no pool has a free resource";
	tu.owner = "alice";
	tu.closed_reason = "";
	seed_write("ticket-update", &tu.base);
	er.message = "ticket 7 is not yours";
	seed_write("error", &er.base);
	al.resource = &ref;
	seed_write("allocate", &al.base);
	de.resource = &ref;
	seed_write("delete", &de.base);
	ar.resource = &ref;
	ar.ok = 1;
	ar.data = ref.data;
	ar.worker = "worker-1";
	ar.duration_ms = 1500;
	seed_write("allocate-result", &ar.base);
	dr.resource = &ref;
	dr.ok = 1;
	dr.worker = "worker-1";
	seed_write("delete-result", &dr.base);
	lc.resource = &ref;
	seed_write("livecheck", &lc.base);
	lr.resource = &ref;
	lr.exit_status = 1;
	lr.worker = "worker-1";
	seed_write("livecheck-result", &lr.base);
	re.resource = &ref;
	seed_write("release", &re.base);
	rr.resource = &ref;
	rr.ok = 1;
	rr.worker = "worker-1";
	seed_write("release-result", &rr.base);
	li.pool = "copr_pool";
	li.sweep_id = 99;
	seed_write("list", &li.base);
	lt.pool = "copr_pool";
	lt.sweep_id = 99;
	lt.ok = 1;
	lt.n_names = 2;
	lt.names = names;
	lt.worker = "worker-1";
	seed_write("list-result", &lt.base);
	ca.resource = &ref;
	seed_write("cancel", &ca.base);
	cq.command = "resource-delete";
	cq.n_args = 2;
	cq.args = args;
	cq.unused = 1;
	cq.version = MSG_CONTROL_VERSION;
	seed_write("control-request", &cq.base);
	cres.id = 12;
	cres.name = ref.name;
	cres.pool = ref.pool;
	cres.state = "UP";
	cres.data_shown = 1;
	cres.data = ref.data;
	cres.ticket_id = 7;
	cres.sandbox = tr.sandbox;
	cres.releases = 2;
	cres.id_in_pool = 2;
	cres.created_ms = 1700000000000;
	cres.n_tags = 2;
	cres.tags = rtags;
	ct.id = 7;
	ct.state = "OPEN";
	ct.n_tags = 2;
	ct.tags = rtags;
	ct.sandbox = tr.sandbox;
	ct.owner = "alice";
	ct.delegate = "copr";
	ct.created_ms = 1700000000000;
	ct.waiting = "no free resource with tags fedora+x86_64; pool copr_pool "
		     "is paused";
	cp.name = "copr_pool";
	cp.configured = 1;
	cp.max = 10;
	cp.max_prealloc = 2;
	cp.max_starting = 4;
	cp.paused = 1;
	cp.free = 2;
	cp.taken = 3;
	cp.waiting = 1;
	cp.starts_ok = 40;
	cp.start_ms_avg = 1234.5;
	cp.last_start_ms = 1700000000000;
	cs.who = "pid 42 on broker-2";
	cs.since_ms = 1700000000000;
	cs.heard_ms_ago = 700;
	cb.who = "pid 41 on broker-1";
	cb.since_ms = 1700000000000;
	cb.epoch = 3;
	cb.n_standbys = 1;
	cb.standbys = css;
	cr.ok = 1;
	cr.version = MSG_CONTROL_VERSION;
	cr.n_warnings = 1;
	cr.warnings = warnings;
	cr.n_resources = 1;
	cr.resources = cress;
	cr.n_tickets = 1;
	cr.tickets = cts;
	cr.n_pools = 1;
	cr.pools = cps;
	cr.broker = &cb;
	seed_write("control-reply", &cr.base);
}

/* A TicketRequest with NLABELS labels of 200-byte values. */
static void
seed_labels(const char *name, size_t nlabels)
{
	Resbus__V1__TicketRequest tr = RESBUS__V1__TICKET_REQUEST__INIT;
	Resbus__V1__TicketRequest__LabelsEntry *e;
	static char *tags[] = {"x86_64"};
	char value[201];
	size_t i;

	memset(value, 'v', 200);
	value[200] = '\0';
	tr.idempotency_key = "labels";
	tr.n_tags = 1;
	tr.tags = tags;
	tr.n_labels = nlabels;
	tr.labels = xcalloc(nlabels, sizeof(*tr.labels));
	for (i = 0; i < nlabels; i++) {
		e = xcalloc(1, sizeof(*e));
		resbus__v1__ticket_request__labels_entry__init(e);
		e->key = xmalloc(16);
		snprintf(e->key, 16, "label_%zu", i);
		e->value = value;
		tr.labels[i] = e;
	}
	seed_write(name, &tr.base);
	for (i = 0; i < nlabels; i++) {
		free(tr.labels[i]->key);
		free(tr.labels[i]);
	}
	free(tr.labels);
}

static void
seeds_findings(void)
{
	static const char *names[] = {"memory", "disk", "cpus", "swap",
	    "gpus"};
	char *padded[5];
	static char *tags[] = {"x86_64"};
	Resbus__V1__TicketRequest tr = RESBUS__V1__TICKET_REQUEST__INIT;
	Resbus__V1__AllocateResult ar = RESBUS__V1__ALLOCATE_RESULT__INIT;
	Resbus__V1__ListResult lt = RESBUS__V1__LIST_RESULT__INIT;
	uint8_t *data;
	size_t i;

	/* Labels rebuilt once per label: quadratic, and uncapped. */
	seed_labels("finding-labels-250", 250);
	seed_labels("finding-labels-450", 450);

	/*
	 * Zero-padded requirements (`memory>=000...001`, 64 bytes each)
	 * made a tag-set key over 255 bytes.
	 */
	for (i = 0; i < 5; i++) {
		padded[i] = xmalloc(TAG_MAX_LEN + 1);
		snprintf(padded[i], TAG_MAX_LEN + 1, "%s>=%0*d", names[i],
		    (int)(TAG_MAX_LEN - strlen(names[i]) - 2), 1);
	}
	tr.idempotency_key = "padded";
	tr.n_tags = 5;
	tr.tags = padded;
	seed_write("finding-padded-tags", &tr.base);
	for (i = 0; i < 5; i++)
		free(padded[i]);

	/* PostgreSQL refused the commit of a non-UTF-8 key, fatally. */
	tr.idempotency_key = "key-\xff\xfe-\xc0\x80-\xed\xa0\x80-\xf4\x90\x80\x80";
	tr.n_tags = 1;
	tr.tags = tags;
	seed_write("finding-idempotency-key-not-utf8", &tr.base);
	tr.idempotency_key = xmalloc(4097);
	memset(tr.idempotency_key, 'k', 4096);
	tr.idempotency_key[4096] = '\0';
	seed_write("finding-idempotency-key-4k", &tr.base);
	free(tr.idempotency_key);

	/* Resource data past what a later command's environment holds. */
	data = xmalloc(100 * 1024);
	memset(data, 'd', 100 * 1024);
	ar.resource = &ref;
	ar.ok = 1;
	ar.worker = "worker-1";
	ar.data.data = data;
	ar.data.len = 100 * 1000;
	seed_write("finding-allocate-result-data-100k", &ar.base);
	ar.data.len = 8192;
	seed_write("finding-allocate-result-data-8k", &ar.base);
	free(data);

	/* One ListResult made hundreds of Delete jobs. */
	lt.pool = "copr_pool";
	lt.sweep_id = 1;
	lt.ok = 1;
	lt.worker = "worker-1";
	lt.n_names = 5000;
	lt.names = xcalloc(lt.n_names, sizeof(*lt.names));
	for (i = 0; i < lt.n_names; i++) {
		lt.names[i] = xmalloc(16);
		snprintf(lt.names[i], 16, "vm-%zu", i);
	}
	seed_write("finding-list-result-5000-names", &lt.base);
	for (i = 0; i < lt.n_names; i++)
		free(lt.names[i]);
	free(lt.names);
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: mkcorpus DIR\n");
		return 2;
	}
	out_dir = argv[1];
	seeds_valid();
	seeds_findings();
	return 0;
}
