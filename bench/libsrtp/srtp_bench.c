/*
 * libsrtp2 reference benchmark for `sotto bench srtp` (same workload, same JSON shape).
 *
 * Usage: srtp_bench SUITE PAYLOAD_BYTES PACKETS
 * Prints: {"suite":..,"payload":..,"packets":..,"protect_pps":..,"unprotect_pps":..}
 *
 * Workload, identical to crates/sotto/src/bench/srtp.rs: one SSRC (0xdeadbeef), RTP packets
 * of a 12-byte header plus PAYLOAD_BYTES, sequence numbers counting up from 1, processed in
 * batches of 1024. The protect phase copies the clear packet into its slot and protects it
 * in place; the unprotect phase verifies and decrypts the batch in place. Each phase is
 * timed on its own (CLOCK_MONOTONIC). Keys: master key byte i = 7i+1, salt byte i = 13i+5.
 */
#include <srtp2/srtp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 1024
#define TRAILER_ROOM (SRTP_MAX_TRAILER_LEN + 16)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int set_suite(const char *name, srtp_crypto_policy_t *p, int *key_len, int *salt_len)
{
    *salt_len = 14;
    if (!strcmp(name, "AES_CM_128_HMAC_SHA1_80")) {
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(p);
        *key_len = 16;
    } else if (!strcmp(name, "AES_CM_128_HMAC_SHA1_32")) {
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(p);
        *key_len = 16;
    } else if (!strcmp(name, "AES_192_CM_HMAC_SHA1_80")) {
        srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80(p);
        *key_len = 24;
    } else if (!strcmp(name, "AES_256_CM_HMAC_SHA1_80")) {
        srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(p);
        *key_len = 32;
    } else if (!strcmp(name, "AEAD_AES_128_GCM")) {
        srtp_crypto_policy_set_aes_gcm_128_16_auth(p);
        *key_len = 16;
        *salt_len = 12;
    } else if (!strcmp(name, "AEAD_AES_256_GCM")) {
        srtp_crypto_policy_set_aes_gcm_256_16_auth(p);
        *key_len = 32;
        *salt_len = 12;
    } else {
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s SUITE PAYLOAD_BYTES PACKETS\n", argv[0]);
        return 2;
    }
    const char *suite = argv[1];
    long payload = strtol(argv[2], NULL, 10);
    long long packets = strtoll(argv[3], NULL, 10);
    if (payload < 0 || payload > 65000 || packets < 1) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    if (srtp_init() != srtp_err_status_ok) {
        fprintf(stderr, "srtp_init failed\n");
        return 1;
    }
    srtp_policy_t tx_pol, rx_pol;
    memset(&tx_pol, 0, sizeof tx_pol);
    int key_len, salt_len;
    if (set_suite(suite, &tx_pol.rtp, &key_len, &salt_len) != 0) {
        fprintf(stderr, "unknown suite %s\n", suite);
        return 2;
    }
    tx_pol.rtcp = tx_pol.rtp;
    unsigned char key[64];
    for (int i = 0; i < key_len; i++)
        key[i] = (unsigned char)(i * 7 + 1);
    for (int i = 0; i < salt_len; i++)
        key[key_len + i] = (unsigned char)(i * 13 + 5);
    tx_pol.key = key;
    tx_pol.window_size = 128;
    tx_pol.allow_repeat_tx = 0;
    tx_pol.next = NULL;
    rx_pol = tx_pol;
    tx_pol.ssrc.type = ssrc_any_outbound;
    rx_pol.ssrc.type = ssrc_any_inbound;
    srtp_t tx, rx;
    if (srtp_create(&tx, &tx_pol) != srtp_err_status_ok ||
        srtp_create(&rx, &rx_pol) != srtp_err_status_ok) {
        fprintf(stderr, "srtp_create failed\n");
        return 1;
    }

    int pkt_len = 12 + (int)payload;
    size_t slot = (size_t)pkt_len + TRAILER_ROOM;
    unsigned char *tmpl = calloc(1, (size_t)pkt_len);
    unsigned char *batch = calloc(BATCH, slot);
    int lens[BATCH];
    if (!tmpl || !batch)
        return 1;
    tmpl[0] = 0x80;
    tmpl[1] = 0;
    tmpl[8] = 0xde; tmpl[9] = 0xad; tmpl[10] = 0xbe; tmpl[11] = 0xef;
    for (int i = 0; i < payload; i++)
        tmpl[12 + i] = (unsigned char)(i * 31);

    double t_protect = 0, t_unprotect = 0;
    uint16_t seq = 0;
    uint32_t ts = 0;
    long long done = 0;
    while (done < packets) {
        int n = (packets - done) < BATCH ? (int)(packets - done) : BATCH;
        double t0 = now_s();
        for (int i = 0; i < n; i++) {
            unsigned char *p = batch + (size_t)i * slot;
            seq++;
            ts += 160;
            memcpy(p, tmpl, (size_t)pkt_len);
            p[2] = seq >> 8; p[3] = seq & 0xff;
            p[4] = ts >> 24; p[5] = (ts >> 16) & 0xff; p[6] = (ts >> 8) & 0xff; p[7] = ts & 0xff;
            lens[i] = pkt_len;
            if (srtp_protect(tx, p, &lens[i]) != srtp_err_status_ok) {
                fprintf(stderr, "srtp_protect failed\n");
                return 1;
            }
        }
        double t1 = now_s();
        for (int i = 0; i < n; i++) {
            unsigned char *p = batch + (size_t)i * slot;
            if (srtp_unprotect(rx, p, &lens[i]) != srtp_err_status_ok || lens[i] != pkt_len) {
                fprintf(stderr, "srtp_unprotect failed\n");
                return 1;
            }
        }
        double t2 = now_s();
        if (memcmp(batch + (size_t)(n - 1) * slot + 12, tmpl + 12, (size_t)payload) != 0) {
            fprintf(stderr, "unprotect did not restore the payload\n");
            return 1;
        }
        t_protect += t1 - t0;
        t_unprotect += t2 - t1;
        done += n;
    }
    printf("{\"suite\":\"%s\",\"payload\":%ld,\"packets\":%lld,\"protect_pps\":%.0f,"
           "\"unprotect_pps\":%.0f}\n",
           suite, payload, packets, (double)packets / t_protect, (double)packets / t_unprotect);
    srtp_dealloc(tx);
    srtp_dealloc(rx);
    srtp_shutdown();
    free(batch);
    free(tmpl);
    return 0;
}
