/*
 * A liblime peer for sotto's LIME interop tests, driven over stdin/stdout, one line each way.
 * Built by crates/lime/tests/interop_liblime.rs with cc against Debian's liblime-dev (its C
 * API, lime/lime_ffi.h). Binary values are hex.
 *
 * Commands (stdin):
 *   create DEVICE CURVE OPKS          register a user on the key server
 *   encrypt LOCAL RECIPIENT_USER POLICY HEXPLAIN DEVICE...
 *   decrypt LOCAL RECIPIENT_USER SENDER HEXDR HEXCIPHER|-
 *   ik LOCAL                          print our identity key
 *   quit
 * While a command waits for the key server, this program prints
 *   POST FROM HEXBODY
 * and reads back
 *   RESP CODE HEXBODY
 * Results: "OK" / "FAIL text" (create), "ENC HEXCIPHER|- DEVICE|STATUS|HEXDR ..." (encrypt),
 * "DEC STATUS HEXPLAIN" (decrypt), "IK HEX".
 */
#include <lime/lime_ffi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lime_ffi_data_t pending = NULL;
static int waiting = 0;
static int succeeded = 0;
static char fail_text[512];

static void put_hex(const uint8_t *b, size_t n) {
	if (n == 0) {
		fputs("-", stdout);
		return;
	}
	for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
}

static size_t get_hex(const char *s, uint8_t *out, size_t cap) {
	if (strcmp(s, "-") == 0) return 0;
	size_t n = strlen(s) / 2;
	if (n > cap) n = cap;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(s + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
	return n;
}

static void on_post(void *ud, lime_ffi_data_t data, const char *url, const char *from,
		    const uint8_t *msg, const size_t n) {
	(void)ud;
	(void)url;
	printf("POST %s ", from);
	put_hex(msg, n);
	printf("\n");
	fflush(stdout);
	pending = data;
}

static void on_done(void *ud, const enum lime_ffi_CallbackReturn st, const char *m) {
	(void)ud;
	succeeded = (st == lime_ffi_CallbackReturn_success);
	snprintf(fail_text, sizeof fail_text, "%s", m ? m : "");
	waiting = 0;
}

static char line[1 << 20];
static uint8_t buf[1 << 18];

/* Answers key server requests until the pending operation calls back. */
static void serve(void) {
	while (waiting) {
		if (!fgets(line, sizeof line, stdin)) exit(2);
		int code = 0;
		char hex[1 << 16];
		if (sscanf(line, "RESP %d %65535s", &code, hex) != 2) {
			fprintf(stderr, "expected RESP, got %s", line);
			exit(2);
		}
		size_t n = get_hex(hex, buf, sizeof buf);
		lime_ffi_processX3DHServerResponse(pending, code, buf, n);
	}
}

int main(int argc, char **argv) {
	if (argc != 2) {
		fprintf(stderr, "usage: %s DB\n", argv[0]);
		return 2;
	}
	lime_manager_t mgr;
	if (lime_ffi_manager_init(&mgr, argv[1], on_post, NULL) != LIME_FFI_SUCCESS) return 1;
	printf("READY\n");
	fflush(stdout);
	while (fgets(line, sizeof line, stdin)) {
		line[strcspn(line, "\n")] = 0;
		char *save = NULL;
		char *cmd = strtok_r(line, " ", &save);
		if (!cmd) continue;
		if (strcmp(cmd, "quit") == 0) break;
		/* serve() reads key-server replies into `line`: keep copies of what we need. */
		if (strcmp(cmd, "create") == 0) {
			char *dev = strdup(strtok_r(NULL, " ", &save));
			int curve = atoi(strtok_r(NULL, " ", &save));
			int opks = atoi(strtok_r(NULL, " ", &save));
			waiting = 1;
			lime_ffi_create_user(mgr, dev, "https://keys.example.test/", curve, opks, on_done, NULL);
			serve();
			if (succeeded) printf("OK\n");
			else printf("FAIL %s\n", fail_text);
			free(dev);
		} else if (strcmp(cmd, "encrypt") == 0) {
			char *local = strdup(strtok_r(NULL, " ", &save));
			char *user = strdup(strtok_r(NULL, " ", &save));
			int policy = atoi(strtok_r(NULL, " ", &save));
			char *plainhex = strtok_r(NULL, " ", &save);
			static uint8_t plain[1 << 16];
			size_t plainlen = get_hex(plainhex, plain, sizeof plain);
			lime_ffi_RecipientData_t rec[16];
			size_t nrec = 0;
			size_t drmax = 0, ciphermax = 0;
			lime_ffi_encryptOutBuffersMaximumSize(plainlen, lime_ffi_CurveId_c448, &drmax, &ciphermax);
			char *d;
			while ((d = strtok_r(NULL, " ", &save)) && nrec < 16) {
				rec[nrec].deviceId = strdup(d);
				rec[nrec].peerStatus = lime_ffi_PeerDeviceStatus_unknown;
				rec[nrec].DRmessage = malloc(drmax);
				rec[nrec].DRmessageSize = drmax;
				nrec++;
			}
			uint8_t *cipher = malloc(ciphermax);
			size_t cipherlen = ciphermax;
			waiting = 1;
			lime_ffi_encrypt(mgr, local, user, rec, nrec, plain, plainlen, cipher, &cipherlen,
					 on_done, NULL, policy);
			serve();
			if (!succeeded) {
				printf("FAIL %s\n", fail_text);
			} else {
				printf("ENC ");
				put_hex(cipher, cipherlen);
				for (size_t i = 0; i < nrec; i++) {
					printf(" %s|%d|", rec[i].deviceId, rec[i].peerStatus);
					put_hex(rec[i].DRmessage, rec[i].DRmessageSize);
				}
				printf("\n");
			}
			for (size_t i = 0; i < nrec; i++) {
				free(rec[i].DRmessage);
				free(rec[i].deviceId);
			}
			free(cipher);
			free(local);
			free(user);
		} else if (strcmp(cmd, "decrypt") == 0) {
			char *local = strtok_r(NULL, " ", &save);
			char *user = strtok_r(NULL, " ", &save);
			char *sender = strtok_r(NULL, " ", &save);
			static uint8_t dr[1 << 16], cipher[1 << 16], plain[1 << 16];
			size_t drlen = get_hex(strtok_r(NULL, " ", &save), dr, sizeof dr);
			size_t cipherlen = get_hex(strtok_r(NULL, " ", &save), cipher, sizeof cipher);
			size_t plainlen = sizeof plain;
			enum lime_ffi_PeerDeviceStatus st = lime_ffi_decrypt(
				mgr, local, user, sender, dr, drlen, cipher, cipherlen, plain, &plainlen);
			printf("DEC %d ", st);
			put_hex(plain, st == lime_ffi_PeerDeviceStatus_fail ? 0 : plainlen);
			printf("\n");
		} else if (strcmp(cmd, "ik") == 0) {
			uint8_t ik[64];
			size_t iklen = sizeof ik;
			lime_ffi_get_selfIdentityKey(mgr, strtok_r(NULL, " ", &save), ik, &iklen);
			printf("IK ");
			put_hex(ik, iklen);
			printf("\n");
		} else {
			printf("FAIL unknown command %s\n", cmd);
		}
		fflush(stdout);
	}
	lime_ffi_manager_destroy(mgr);
	return 0;
}
