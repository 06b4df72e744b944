/*
 * Whole ZRTP handshakes between two in-process bzrtp endpoints (Debian's libbzrtp-dev), the
 * reference for `sotto bench zrtp` (crates/sotto/src/bench/zrtp.rs), measured the same way:
 * for each handshake both contexts are created and initialised, both channels started, the
 * packets each side sends are handed to the other at once (no loss, no timers firing), until
 * both channels are secure and both have the SRTP secrets; then both contexts are destroyed.
 * No ZID cache (cacheless). CPU time (CLOCK_PROCESS_CPUTIME_ID) and wall time over N
 * handshakes.
 *
 * Usage: bzrtp_bench KEY_AGREEMENT HANDSHAKES [CIPHER]
 *        (KEY_AGREEMENT: X255 X448 DH3k DH2k; CIPHER: AES1 (default) or AES3, which sets the DH
 *        exponent length as in sotto: twice the key length)
 * Prints one JSON line.
 */
#include <bzrtp/bzrtp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUEUE_MAX 64
#define PACKET_MAX 3072

typedef struct {
	uint8_t data[QUEUE_MAX][PACKET_MAX];
	uint16_t len[QUEUE_MAX];
	int head, tail;
} queue_t;

typedef struct {
	queue_t *to_peer;
	int secrets;
	int secure;
} endpoint_t;

static int send_data(void *client, const uint8_t *packet, uint16_t length) {
	endpoint_t *e = (endpoint_t *)client;
	queue_t *q = e->to_peer;
	if (length > PACKET_MAX || q->tail - q->head >= QUEUE_MAX) return -1;
	int slot = q->tail % QUEUE_MAX;
	memcpy(q->data[slot], packet, length);
	q->len[slot] = length;
	q->tail++;
	return 0;
}

static int secrets_available(void *client, const bzrtpSrtpSecrets_t *s, uint8_t part) {
	(void)s;
	endpoint_t *e = (endpoint_t *)client;
	e->secrets |= part;
	return 0;
}

static int start_srtp(void *client, const bzrtpSrtpSecrets_t *s, int32_t verified) {
	(void)s;
	(void)verified;
	((endpoint_t *)client)->secure = 1;
	return 0;
}

static uint8_t agreement(const char *name) {
	if (!strcmp(name, "X255")) return ZRTP_KEYAGREEMENT_X255;
	if (!strcmp(name, "X448")) return ZRTP_KEYAGREEMENT_X448;
	if (!strcmp(name, "DH3k")) return ZRTP_KEYAGREEMENT_DH3k;
	if (!strcmp(name, "DH2k")) return ZRTP_KEYAGREEMENT_DH2k;
	fprintf(stderr, "unknown key agreement %s (X255 X448 DH3k DH2k)\n", name);
	exit(2);
}

static double seconds(clockid_t clock) {
	struct timespec t;
	clock_gettime(clock, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Delivers what `q` holds to `ctx`; returns how many packets were delivered. */
static int deliver(queue_t *q, bzrtpContext_t *ctx, uint32_t ssrc) {
	int n = 0;
	while (q->head < q->tail) {
		int slot = q->head % QUEUE_MAX;
		q->head++;
		bzrtp_processMessage(ctx, ssrc, q->data[slot], q->len[slot]);
		n++;
	}
	return n;
}

static int handshake(uint8_t ka, uint8_t cipher) {
	static queue_t a_to_b, b_to_a;
	memset(&a_to_b, 0, sizeof a_to_b);
	memset(&b_to_a, 0, sizeof b_to_a);
	endpoint_t a = {&a_to_b, 0, 0}, b = {&b_to_a, 0, 0};
	const uint32_t ssrc_a = 0x11111111, ssrc_b = 0x22222222;
	bzrtpCallbacks_t cbs;
	memset(&cbs, 0, sizeof cbs);
	cbs.bzrtp_sendData = send_data;
	cbs.bzrtp_srtpSecretsAvailable = secrets_available;
	cbs.bzrtp_startSrtpSession = start_srtp;
	cbs.bzrtp_messageLevel = BZRTP_MESSAGE_ERROR;
	bzrtpContext_t *ca = bzrtp_createBzrtpContext();
	bzrtpContext_t *cb = bzrtp_createBzrtpContext();
	uint8_t kas[7] = {ka};
	bzrtp_setSupportedCryptoTypes(ca, ZRTP_KEYAGREEMENT_TYPE, kas, 1);
	bzrtp_setSupportedCryptoTypes(cb, ZRTP_KEYAGREEMENT_TYPE, kas, 1);
	uint8_t ciphers[7] = {cipher};
	bzrtp_setSupportedCryptoTypes(ca, ZRTP_CIPHERBLOCK_TYPE, ciphers, 1);
	bzrtp_setSupportedCryptoTypes(cb, ZRTP_CIPHERBLOCK_TYPE, ciphers, 1);
	bzrtp_initBzrtpContext(ca, ssrc_a);
	bzrtp_initBzrtpContext(cb, ssrc_b);
	bzrtp_setCallbacks(ca, &cbs);
	bzrtp_setCallbacks(cb, &cbs);
	bzrtp_setClientData(ca, ssrc_a, &a);
	bzrtp_setClientData(cb, ssrc_b, &b);
	bzrtp_startChannelEngine(ca, ssrc_a);
	bzrtp_startChannelEngine(cb, ssrc_b);
	/* The first timer tick sends Hello; no later tick is given, so nothing is retransmitted. */
	bzrtp_iterate(ca, ssrc_a, 1);
	bzrtp_iterate(cb, ssrc_b, 1);
	for (int round = 0; round < 100 && !(a.secure && b.secure); round++) {
		int moved = deliver(&a_to_b, cb, ssrc_b) + deliver(&b_to_a, ca, ssrc_a);
		if (!moved) break;
	}
	int ok = a.secure && b.secure && a.secrets == 3 && b.secrets == 3;
	bzrtp_destroyBzrtpContext(ca, ssrc_a);
	bzrtp_destroyBzrtpContext(cb, ssrc_b);
	return ok;
}

int main(int argc, char **argv) {
	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: %s X255|X448|DH3k|DH2k HANDSHAKES [AES1|AES3]\n", argv[0]);
		return 2;
	}
	uint8_t ka = agreement(argv[1]);
	const char *cipher_name = argc == 4 ? argv[3] : "AES1";
	uint8_t cipher = !strcmp(cipher_name, "AES3") ? ZRTP_CIPHER_AES3 : ZRTP_CIPHER_AES1;
	long n = atol(argv[2]);
	if (n <= 0) return 2;
	if (!handshake(ka, cipher)) { /* warm-up, and a check that it works at all */
		fprintf(stderr, "bzrtp handshake did not complete\n");
		return 1;
	}
	double c0 = seconds(CLOCK_PROCESS_CPUTIME_ID), w0 = seconds(CLOCK_MONOTONIC);
	for (long i = 0; i < n; i++) {
		if (!handshake(ka, cipher)) {
			fprintf(stderr, "bzrtp handshake %ld did not complete\n", i);
			return 1;
		}
	}
	double cpu = seconds(CLOCK_PROCESS_CPUTIME_ID) - c0, wall = seconds(CLOCK_MONOTONIC) - w0;
	printf("{\"impl\":\"bzrtp\",\"key_agreement\":\"%s\",\"cipher\":\"%s\",\"handshakes\":%ld,"
	       "\"cpu_ms_per_handshake\":%.4f,\"wall_ms_per_handshake\":%.4f}\n",
	       argv[1], cipher == ZRTP_CIPHER_AES3 ? "AES3" : "AES1", n, cpu * 1e3 / n, wall * 1e3 / n);
	return 0;
}
