/*
 * impair-relay: forwards Ethernet frames between two interfaces, dropping a
 * random fraction and delaying the rest, for TFTP loss tests. The kernel on
 * our CI machines has no sch_netem, so loss is made in user space.
 *
 * It runs inside a namespace of the test's own that holds the two middle ends
 * of two veth pairs; it has no addresses and routes nothing else.
 *
 * usage: impair-relay IF_A IF_B LOSS DELAY_US SEED MAX_SECONDS
 *   LOSS      probability in [0,1) that a frame is dropped, each direction
 *   DELAY_US  one-way delay added to every forwarded frame
 *   SEED      for the loss generator, so a run can be repeated
 *   MAX_SECONDS  the relay exits by itself after this long (tests must end)
 * On SIGTERM/SIGINT or at the deadline it prints "forwarded=N dropped=N" to stderr.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define QLEN 8192
#define FRAME 2048

struct pending { uint64_t due_us; int len; unsigned char buf[FRAME]; };
struct dir { int in, out; int out_ifindex; struct pending *q; unsigned head, tail; unsigned long fwd, drop; };

static volatile sig_atomic_t stopping;
static void on_signal(int s) { (void)s; stopping = 1; }

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* xorshift64*: small, seedable, good enough for loss decisions */
static uint64_t rng_state;
static double rnd(void) {
  rng_state ^= rng_state >> 12; rng_state ^= rng_state << 25; rng_state ^= rng_state >> 27;
  return (double)((rng_state * 2685821657736338717ull) >> 11) / (double)(1ull << 53);
}

static int open_if(const char *name, int *ifindex) {
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));
  if (fd < 0) { perror("socket"); exit(1); }
  *ifindex = (int)if_nametoindex(name);
  if (*ifindex == 0) { fprintf(stderr, "no interface %s\n", name); exit(1); }
  struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = *ifindex };
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) { perror("bind"); exit(1); }
  return fd;
}

static void receive(struct dir *d, double loss, uint64_t delay) {
  for (int i = 0; i < 256; i++) {
    struct sockaddr_ll from; socklen_t fl = sizeof from;
    struct pending *p = &d->q[d->tail % QLEN];
    ssize_t n = recvfrom(d->in, p->buf, FRAME, 0, (struct sockaddr *)&from, &fl);
    if (n < 0) return;
    if (from.sll_pkttype == PACKET_OUTGOING) continue; /* our own sends, seen on the way out */
    if (rnd() < loss) { d->drop++; continue; }
    if (d->tail - d->head >= QLEN) { d->drop++; continue; }
    p->len = (int)n;
    p->due_us = now_us() + delay;
    d->tail++;
  }
}

static void flush(struct dir *d) {
  uint64_t t = now_us();
  while (d->head != d->tail && d->q[d->head % QLEN].due_us <= t) {
    struct pending *p = &d->q[d->head % QLEN];
    struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_ifindex = d->out_ifindex, .sll_halen = ETH_ALEN };
    memcpy(to.sll_addr, p->buf, ETH_ALEN);
    if (sendto(d->out, p->buf, (size_t)p->len, 0, (struct sockaddr *)&to, sizeof to) >= 0) d->fwd++;
    d->head++;
  }
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: %s IF_A IF_B LOSS DELAY_US SEED MAX_SECONDS\n", argv[0]);
    return 2;
  }
  double loss = atof(argv[3]);
  uint64_t delay = strtoull(argv[4], NULL, 10);
  rng_state = strtoull(argv[5], NULL, 10) * 0x9E3779B97F4A7C15ull + 1;
  uint64_t deadline = now_us() + strtoull(argv[6], NULL, 10) * 1000000u;
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);

  int ia, ib;
  int fa = open_if(argv[1], &ia), fb = open_if(argv[2], &ib);
  struct dir ab = { .in = fa, .out = fb, .out_ifindex = ib, .q = calloc(QLEN, sizeof(struct pending)) };
  struct dir ba = { .in = fb, .out = fa, .out_ifindex = ia, .q = calloc(QLEN, sizeof(struct pending)) };
  if (!ab.q || !ba.q) return 1;
  fprintf(stderr, "impair-relay %s<->%s loss=%g delay=%lluus\n", argv[1], argv[2], loss, (unsigned long long)delay);

  struct pollfd pf[2] = { { .fd = fa, .events = POLLIN }, { .fd = fb, .events = POLLIN } };
  while (!stopping && now_us() < deadline) {
    int timeout_ms = 50;
    uint64_t t = now_us();
    struct dir *ds[2] = { &ab, &ba };
    for (int i = 0; i < 2; i++) {
      if (ds[i]->head != ds[i]->tail) {
        uint64_t due = ds[i]->q[ds[i]->head % QLEN].due_us;
        int ms = due <= t ? 0 : (int)((due - t + 999) / 1000);
        if (ms < timeout_ms) timeout_ms = ms;
      }
    }
    /* sub-millisecond delays: spin with a zero timeout rather than sleep a whole ms */
    if (poll(pf, 2, timeout_ms) < 0 && errno != EINTR) break;
    if (pf[0].revents & POLLIN) receive(&ab, loss, delay);
    if (pf[1].revents & POLLIN) receive(&ba, loss, delay);
    flush(&ab);
    flush(&ba);
  }
  fprintf(stderr, "forwarded=%lu dropped=%lu\n", ab.fwd + ba.fwd, ab.drop + ba.drop);
  return 0;
}
