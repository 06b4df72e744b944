/*
 * Linphone's liblime (Debian liblime-dev 5.1) measured as `sotto bench lime` measures sotto:
 * two users in two managers (two SQLite files, liblime's persisted store), alice writes
 * first, then they answer each other so the ratchet turns at every message; a message is one
 * encrypt and one decrypt (cipher-message policy, 100 octets). The key server is sotto's,
 * in process: this program prints "POST FROM HEX" and reads "RESP CODE HEX", as
 * crates/lime/tests/liblime_peer.c does. Prints one JSON line.
 *
 * usage: liblime_bench DIR CURVE(1|2) MESSAGES   (run by `sotto bench lime --liblime PATH`)
 */
#include <lime/lime_ffi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static lime_ffi_data_t pending;
static int waiting, succeeded;

static void on_post(void *ud, lime_ffi_data_t d, const char *url, const char *from,
		    const uint8_t *m, const size_t n) {
	(void)ud;
	(void)url;
	printf("POST %s ", from);
	for (size_t i = 0; i < n; i++) printf("%02x", m[i]);
	printf("\n");
	fflush(stdout);
	pending = d;
}

static void on_done(void *ud, const enum lime_ffi_CallbackReturn st, const char *m) {
	(void)ud;
	(void)m;
	succeeded = st == lime_ffi_CallbackReturn_success;
	waiting = 0;
}

static char line[1 << 17];
static uint8_t buf[1 << 16];

static void serve(void) {
	while (waiting) {
		int code;
		static char hex[1 << 17];
		if (!fgets(line, sizeof line, stdin) || sscanf(line, "RESP %d %131071s", &code, hex) != 2) exit(2);
		size_t n = strcmp(hex, "-") == 0 ? 0 : strlen(hex) / 2;
		for (size_t i = 0; i < n; i++) {
			unsigned v;
			sscanf(hex + 2 * i, "%2x", &v);
			buf[i] = (uint8_t)v;
		}
		lime_ffi_processX3DHServerResponse(pending, code, buf, n);
	}
}

static uint8_t text[100];
static uint8_t dr[4096], cipher[4096], plain[4096];

/* One message from (fm, fid) to (tm, tid): encrypt then decrypt. */
static int one(lime_manager_t fm, const char *fid, lime_manager_t tm, const char *tid) {
	lime_ffi_RecipientData_t r = {(char *)tid, lime_ffi_PeerDeviceStatus_unknown, dr, sizeof dr};
	size_t clen = sizeof cipher;
	waiting = 1;
	lime_ffi_encrypt(fm, fid, tid, &r, 1, text, sizeof text, cipher, &clen, on_done, NULL,
			 lime_ffi_EncryptionPolicy_cipherMessage);
	serve();
	if (!succeeded) return 0;
	size_t plen = sizeof plain;
	return lime_ffi_decrypt(tm, tid, tid, fid, dr, r.DRmessageSize, cipher, clen, plain, &plen) !=
	       lime_ffi_PeerDeviceStatus_fail;
}

int main(int argc, char **argv) {
	if (argc != 4) return 2;
	int curve = atoi(argv[2]), n = atoi(argv[3]);
	char pa[4096], pb[4096];
	snprintf(pa, sizeof pa, "%s/alice.sqlite", argv[1]);
	snprintf(pb, sizeof pb, "%s/bob.sqlite", argv[1]);
	memset(text, 'x', sizeof text);
	lime_manager_t a, b;
	if (lime_ffi_manager_init(&a, pa, on_post, NULL) || lime_ffi_manager_init(&b, pb, on_post, NULL)) return 1;
	const char *ids[2] = {"alice", "bob"};
	lime_manager_t ms[2] = {a, b};
	for (int i = 0; i < 2; i++) {
		waiting = 1;
		lime_ffi_create_user(ms[i], ids[i], "https://keys.example.test/", curve, 1, on_done, NULL);
		serve();
		if (!succeeded) return 1;
	}
	if (!one(a, "alice", b, "bob")) return 1;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < n; i++) {
		int ok = i % 2 == 0 ? one(b, "bob", a, "alice") : one(a, "alice", b, "bob");
		if (!ok) return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("{\"impl\":\"liblime\",\"bench\":\"lime\",\"curve\":\"%s\",\"messages\":%d,"
	       "\"messages_per_s_persisted\":%.2f}\n",
	       curve == 1 ? "c25519" : "c448", n, n / s);
	fflush(stdout);
	lime_ffi_manager_destroy(a);
	lime_ffi_manager_destroy(b);
	return 0;
}
