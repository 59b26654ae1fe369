/*
 * fastudp: the datagram path of a TFTP transfer socket, without node:dgram's
 * per-datagram costs.
 *
 * node:dgram pays, for every datagram it receives, a 64 KiB allocation, a new
 * Buffer, an rinfo object with an inet_ntop-formatted address string and a
 * callback through the full MakeCallback path; for every send, a SendWrap
 * request object. On a lock-step transfer (one DATA per ACK, 45,700 round
 * trips for 64 MiB at blksize 1468) that is about 12 us of CPU per round trip
 * that C servers do not pay (docs/performance.md, perf profile).
 *
 * This module keeps only the I/O: a non-blocking IPv4 UDP socket, bound and
 * connect(2)ed to the client (its transfer ID, RFC 1350), polled on Node's own
 * libuv loop. Each datagram is received into one Buffer that JavaScript owns
 * and reuses, and the callback gets only its length. Every protocol decision
 * stays in TypeScript (src/tftp/session.ts), with one exception, the ACK pump
 * below: the one case of a read transfer that needs no decision.
 *
 * JavaScript API (see src/net/native-udp.ts):
 *   open(bindAddr, peerAddr, peerPort, recvBuf, onDatagram) -> [handle, localAddr, localPort]
 *       onDatagram(n): n >= 0 is a datagram of n bytes now in recvBuf;
 *       n < 0 is -errno from recv (ECONNREFUSED after ICMP port unreachable).
 *   send(handle, a[, b]) -> 0 or errno   (a and b sent as one datagram, an iovec;
 *       held back to the end of the poll phase while many sockets are open)
 *   close(handle)
 *   configure(busyPollUs)   (see "Adaptive busy polling" below; 0 turns it off)
 *   pump(handle, file, blksize, windowsize, state)   (see "ACK pump"; file null stops it)
 */
#define _GNU_SOURCE /* sendmmsg */
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <stdio.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* Datagrams drained per readiness event before yielding to the loop. */
#define MAX_DRAIN 64

/*
 * Adaptive busy polling. On a lock-step transfer the server answers an ACK
 * with the next DATA and then sleeps in epoll until the next ACK: the sleep
 * and the wake-up cost more than the client's whole turnaround on a fast
 * link. So after delivering a datagram, keep trying recv(2) for up to
 * spin_ns before going back to the loop, as Linux's SO_BUSY_POLL does in the
 * kernel. Only while few transfer sockets are open (in a boot storm the other
 * sockets' datagrams must not wait), and a socket whose peer keeps missing
 * the spin window (a real network's RTT, a windowed client) stops spinning
 * for a while. configure(0) turns it off.
 */
static long spin_ns = 20000;
#define SPIN_MAX_SOCKS 2
#define SPIN_MISS_LIMIT 8
#define SPIN_COOLDOWN_WAKES 512
static int open_socks = 0;

/*
 * Send batching. With many transfers in flight, answers are held back while
 * the poll phase runs and sent together right after it (a uv_check handle),
 * with one sendmmsg(2) per socket, as node:dgram (libuv) defers sends made
 * while it is reading. Clients then find their datagrams waiting.
 */
#define PEND_MAX 64
#define PEND_BYTES (16 * 1024) /* per socket, allocated on first use; fuller batches go out early */
static int in_poll = 0;
static struct fast_sock_s *pend_head = NULL;
static uv_check_t flush_check;
static int flush_ready = 0;

/*
 * ACK pump. On a lock-step transfer every ACK that acknowledges the whole
 * outstanding window is answered the same way: send the next window. Taking
 * that ACK through the event loop, a callback scope and JavaScript costs a
 * few microseconds per block, and syslinux.efi fetches a 14 MB kernel in
 * 10,000 lock-step blocks (docs/performance.md, session 9). So once the file
 * is wholly in memory, the read transfer hands this socket the file's bytes
 * and a small Int32Array it shares with JavaScript:
 *   state[PUMP_ACKED]    highest block acknowledged (absolute, RFC 1350 numbering from 1)
 *   state[PUMP_SENT]     highest block sent
 *   state[PUMP_TOTAL]    number of blocks in the file (the last one short, maybe empty)
 *   state[PUMP_ANSWERED] ACKs answered here (JavaScript reads it to see progress)
 * A datagram of exactly 4 bytes, opcode ACK (4), whose block number is
 * state[PUMP_SENT] modulo 65536 while blocks remain, is answered here with
 * the next window: DATA blocks SENT+1 .. min(SENT+windowsize, TOTAL). Every
 * other datagram (a duplicate or partial ACK, the final ACK, an ERROR,
 * anything else) goes to JavaScript as before, which first reads the state,
 * decides, and writes back what it sent. Retransmission timers, RTT and
 * give-up stay in JavaScript, which sees the pump's progress in the counter.
 */
enum { PUMP_ACKED = 0, PUMP_SENT = 1, PUMP_TOTAL = 2, PUMP_ANSWERED = 3, PUMP_WORDS = 4 };

static long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000L + t.tv_nsec;
}

typedef struct fast_sock_s {
  uv_poll_t poll;
  int fd;
  /*
   * Unknown transfer IDs (RFC 1350 section 4): a second, unconnected socket on
   * the transfer's port. The kernel gives the peer's datagrams to the
   * connected socket (its lookup scores an exact 4-tuple higher) and any
   * other source's to this one, which answers each with ERROR 5 without
   * disturbing the transfer. -1 when it could not be set up.
   */
  int sfd;
  uv_poll_t spoll;
  int closes_left; /* uv handles still to close before the struct is released */
  napi_env env;
  napi_ref callback;
  napi_ref recv_ref; /* keeps the receive Buffer alive */
  uint8_t *recv_data;
  size_t recv_cap;
  napi_async_context async;
  int closing;   /* close() called: no more callbacks */
  int released;  /* uv_close done */
  int finalized; /* the JS handle was collected */
  int spin_misses;   /* spins in a row that caught nothing */
  int spin_cooldown; /* wakes left before spinning again */
  /* datagrams held back until the end of this loop iteration's poll phase */
  uint8_t *pend_data;
  size_t pend_used;
  int pend_count;
  size_t pend_len[PEND_MAX];
  struct fast_sock_s *pend_next;
  int pend_listed;
  /* the ACK pump (off while pump_file is NULL) */
  const uint8_t *pump_file;
  size_t pump_len;
  int32_t *pump_state;
  uint32_t pump_blksize;
  uint32_t pump_window;
  napi_ref pump_file_ref;
  napi_ref pump_state_ref;
} fast_sock;

#define CHECK(env, call)                                                     \
  do {                                                                       \
    if ((call) != napi_ok) {                                                 \
      const napi_extended_error_info *info_;                                 \
      napi_get_last_error_info((env), &info_);                               \
      napi_throw_error((env), NULL, info_ && info_->error_message ? info_->error_message : #call); \
      return NULL;                                                           \
    }                                                                        \
  } while (0)

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_value m, code, e;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_int32(env, err, &code);
  napi_create_error(env, NULL, m, &e);
  napi_set_named_property(env, e, "errno", code);
  napi_throw(env, e);
  return NULL;
}


static void flush_sock(fast_sock *s) {
  if (s->pend_count == 0) return;
  struct mmsghdr msgs[PEND_MAX];
  struct iovec iov[PEND_MAX];
  size_t off = 0;
  for (int i = 0; i < s->pend_count; i++) {
    iov[i].iov_base = s->pend_data + off;
    iov[i].iov_len = s->pend_len[i];
    off += s->pend_len[i];
    memset(&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  int done = 0;
  while (done < s->pend_count) {
    int r = sendmmsg(s->fd, msgs + done, (unsigned)(s->pend_count - done), MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      break; /* EAGAIN or an ICMP error: the rest is lost, as a full queue loses it; retransmission covers it */
    }
    done += r;
  }
  s->pend_count = 0;
  s->pend_used = 0;
}

static void unlist(fast_sock *s) {
  if (!s->pend_listed) return;
  for (fast_sock **p = &pend_head; *p; p = &(*p)->pend_next) {
    if (*p == s) {
      *p = s->pend_next;
      break;
    }
  }
  s->pend_listed = 0;
  s->pend_next = NULL;
}

static void on_check(uv_check_t *h) {
  (void)h;
  fast_sock *s = pend_head;
  pend_head = NULL;
  while (s) {
    fast_sock *next = s->pend_next;
    s->pend_listed = 0;
    s->pend_next = NULL;
    flush_sock(s);
    s = next;
  }
}

/* Holds a datagram back until on_check; 0 when it must go now instead. */
static int defer_send(fast_sock *s, const struct iovec *iov, int n) {
  if (!in_poll || open_socks <= SPIN_MAX_SOCKS) return 0;
  size_t len = 0;
  for (int i = 0; i < n; i++) len += iov[i].iov_len;
  if (len > PEND_BYTES) return 0;
  if (!s->pend_data && !(s->pend_data = malloc(PEND_BYTES))) return 0;
  if (s->pend_count == PEND_MAX || s->pend_used + len > PEND_BYTES) flush_sock(s);
  for (int i = 0; i < n; i++) {
    memcpy(s->pend_data + s->pend_used, iov[i].iov_base, iov[i].iov_len);
    s->pend_used += iov[i].iov_len;
  }
  s->pend_len[s->pend_count++] = len;
  if (!s->pend_listed) {
    s->pend_listed = 1;
    s->pend_next = pend_head;
    pend_head = s;
  }
  return 1;
}

/* Sends one datagram (iovec parts) now, or holds it back; 0 or errno. */
static int send_iov(fast_sock *s, struct iovec *iov, int n) {
  if (defer_send(s, iov, n)) return 0;
  flush_sock(s); /* keep the order of anything held back */
  struct msghdr m;
  memset(&m, 0, sizeof m);
  m.msg_iov = iov;
  m.msg_iovlen = n;
  ssize_t r;
  do r = sendmsg(s->fd, &m, MSG_DONTWAIT);
  while (r < 0 && errno == EINTR);
  return r < 0 ? errno : 0;
}

static void pump_stop(fast_sock *s) {
  if (s->pump_file_ref) napi_delete_reference(s->env, s->pump_file_ref);
  if (s->pump_state_ref) napi_delete_reference(s->env, s->pump_state_ref);
  s->pump_file_ref = s->pump_state_ref = NULL;
  s->pump_file = NULL;
  s->pump_state = NULL;
}

/* 1 when the datagram of n bytes in recv_data was an ACK the pump answered. */
static int pump_answer(fast_sock *s, int n) {
  const uint8_t *p = s->recv_data;
  int32_t *st = s->pump_state;
  if (n != 4 || p[0] != 0 || p[1] != 4) return 0;
  int32_t sent = st[PUMP_SENT], total = st[PUMP_TOTAL];
  /* nothing outstanding, or the final ACK: JavaScript ends the transfer */
  if (sent <= st[PUMP_ACKED] || sent >= total) return 0;
  if ((((uint32_t)p[2] << 8) | p[3]) != ((uint32_t)sent & 0xffff)) return 0;
  int32_t last = sent + (int32_t)s->pump_window;
  if (last > total) last = total;
  for (int32_t b = sent + 1; b <= last; b++) {
    uint8_t hdr[4] = {0, 3, (uint8_t)((b >> 8) & 0xff), (uint8_t)(b & 0xff)};
    size_t start = (size_t)(b - 1) * s->pump_blksize;
    size_t end = start + s->pump_blksize;
    if (start > s->pump_len) start = s->pump_len;
    if (end > s->pump_len) end = s->pump_len;
    struct iovec iov[2] = {{hdr, 4}, {(void *)(s->pump_file + start), end - start}};
    /* a failed send is a lost datagram: JavaScript's timer resends it */
    send_iov(s, iov, 2);
  }
  st[PUMP_ACKED] = sent;
  st[PUMP_SENT] = last;
  st[PUMP_ANSWERED]++;
  return 1;
}

static void maybe_free(fast_sock *s) {
  if (s->released && s->finalized) free(s);
}

static void on_closed(uv_handle_t *h) {
  fast_sock *s = (fast_sock *)h->data;
  if (h == (uv_handle_t *)&s->spoll) {
    close(s->sfd);
    s->sfd = -1;
  } else {
    close(s->fd);
    s->fd = -1;
    napi_delete_reference(s->env, s->callback);
    napi_delete_reference(s->env, s->recv_ref);
    napi_async_destroy(s->env, s->async);
    pump_stop(s);
    free(s->pend_data);
    s->pend_data = NULL;
  }
  if (--s->closes_left > 0) return;
  s->released = 1;
  maybe_free(s);
}

/* Datagrams from a source other than the transfer's peer, answered with ERROR 5 (process-wide count). */
static uint32_t unknown_tid_total = 0;

static void on_stranger(uv_poll_t *h, int status, int events) {
  (void)events;
  fast_sock *s = (fast_sock *)h->data;
  if (s->closing || status < 0) return;
  static const uint8_t err5[] = {0, 5, 0, 5, 'U', 'n', 'k', 'n', 'o', 'w', 'n', ' ', 't', 'r', 'a', 'n', 's', 'f', 'e', 'r', ' ', 'I', 'D', 0};
  uint8_t buf[4];
  for (int i = 0; i < MAX_DRAIN; i++) {
    struct sockaddr_in from;
    socklen_t flen = sizeof from;
    ssize_t r = recvfrom(s->sfd, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&from, &flen);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    unknown_tid_total++;
    /* never answer an ERROR with an ERROR (RFC 1350 section 7: not acknowledged; no loops) */
    if (r >= 2 && buf[0] == 0 && buf[1] == 5) continue;
    sendto(s->sfd, err5, sizeof err5, MSG_DONTWAIT, (struct sockaddr *)&from, flen);
  }
}

/* The stranger socket on `local` (the transfer's address and port); -1 if it cannot be had. */
static int open_stranger(const struct sockaddr_in *local) {
  int one = 1;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 || bind(fd, (const struct sockaddr *)local, sizeof *local) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static void start_close(fast_sock *s) {
  if (s->closing) return;
  flush_sock(s); /* an ERROR sent just before close() still goes out */
  unlist(s);
  s->closing = 1;
  open_socks--;
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, on_closed);
  if (s->sfd >= 0) {
    uv_poll_stop(&s->spoll);
    uv_close((uv_handle_t *)&s->spoll, on_closed);
  }
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  fast_sock *s = (fast_sock *)data;
  s->finalized = 1;
  if (!s->closing) start_close(s); /* dropped without close(): do not leak the fd */
  maybe_free(s);
}

/*
 * 1 when this socket may busy-poll after the datagram it just delivered (see
 * "Adaptive busy polling"); a wake while it cools down counts down instead.
 * Asking twice in one wake is harmless: a yes changes nothing.
 */
static int spin_allowed(fast_sock *s) {
  if (spin_ns <= 0 || open_socks > SPIN_MAX_SOCKS) return 0;
  if (s->spin_cooldown > 0) {
    s->spin_cooldown--;
    return 0;
  }
  return 1;
}

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  fast_sock *s = (fast_sock *)h->data;
  if (s->closing) return;
  napi_env env = s->env;
  napi_handle_scope scope = NULL; /* opened for the first datagram JavaScript gets (the pump needs none) */
  in_poll++;
  napi_value cb, global, arg, result;
  for (int i = 0; i < MAX_DRAIN && !s->closing; i++) {
    int n;
    if (status < 0) {
      n = status; /* libuv reports a poll error as a negative errno */
      status = 0;
    } else {
      ssize_t r = recv(s->fd, s->recv_data, s->recv_cap, MSG_DONTWAIT);
      if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          /* i > 0: a datagram was just delivered (and, likely, answered) */
          if (i > 0 && spin_allowed(s)) {
            long until = now_ns() + spin_ns;
            do r = recv(s->fd, s->recv_data, s->recv_cap, MSG_DONTWAIT);
            while (r < 0 && errno == EAGAIN && now_ns() < until);
            if (r >= 0) {
              s->spin_misses = 0;
              n = (int)(r > (ssize_t)s->recv_cap ? (ssize_t)s->recv_cap : r);
              goto deliver;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
              n = -errno; /* ECONNREFUSED while spinning: report it, as below */
              goto deliver;
            }
            if (++s->spin_misses >= SPIN_MISS_LIMIT) {
              s->spin_misses = 0;
              s->spin_cooldown = SPIN_COOLDOWN_WAKES;
            }
          }
          break;
        }
        if (errno == EINTR) continue;
        n = -errno;
      } else {
        n = (int)(r > (ssize_t)s->recv_cap ? (ssize_t)s->recv_cap : r);
      }
    }
  deliver:
    if (n >= 0 && s->pump_file && pump_answer(s, n)) {
      /*
       * The pump answered a whole window: the peer's next ACK is a round trip
       * away. Unless this socket spins (below), do not drain: the recv(2)
       * would find the socket empty, one syscall per block for nothing. The
       * poll is level-triggered (libuv's epoll without EPOLLET), so a
       * datagram that did arrive meanwhile is reported on the next pass.
       */
      if (spin_allowed(s)) continue; /* the next recv(2) starts the spin */
      break;
    }
    if (!scope) {
      if (napi_open_handle_scope(env, &scope) != napi_ok) {
        scope = NULL;
        break;
      }
      napi_get_reference_value(env, s->callback, &cb);
      napi_get_global(env, &global);
    }
    napi_create_int32(env, n, &arg);
    napi_status st = napi_make_callback(env, s->async, global, cb, 1, &arg, &result);
    if (st == napi_pending_exception) {
      /* as an exception thrown from a dgram 'message' handler: uncaught */
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      napi_fatal_exception(env, exc);
      break;
    }
  }
  in_poll--;
  if (scope) napi_close_handle_scope(env, scope);
}

static int parse_v4(napi_env env, napi_value v, struct in_addr *out) {
  char buf[64];
  size_t len;
  if (napi_get_value_string_utf8(env, v, buf, sizeof buf, &len) != napi_ok) return 0;
  return inet_pton(AF_INET, buf, out) == 1;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) {
    napi_throw_type_error(env, NULL, "open(bindAddr, peerAddr, peerPort, recvBuf, onDatagram)");
    return NULL;
  }
  struct sockaddr_in local = {0}, peer = {0};
  local.sin_family = peer.sin_family = AF_INET;
  if (!parse_v4(env, argv[0], &local.sin_addr) || !parse_v4(env, argv[1], &peer.sin_addr)) {
    napi_throw_type_error(env, NULL, "fastudp: IPv4 addresses only");
    return NULL;
  }
  uint32_t port;
  CHECK(env, napi_get_value_uint32(env, argv[2], &port));
  peer.sin_port = htons((uint16_t)port);
  void *data;
  size_t cap;
  CHECK(env, napi_get_buffer_info(env, argv[3], &data, &cap));

  /*
   * The port comes from binding the transfer socket alone, without
   * SO_REUSEADDR, so that it is a port no other socket holds (an autobind
   * with SO_REUSEADDR may pick a port another reusing socket has). Then both
   * sockets get SO_REUSEADDR, the stranger socket binds the same port, and
   * the transfer socket connects to its peer.
   */
  int one = 1;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "bind", e);
  }
  struct sockaddr_in bound;
  socklen_t blen = sizeof bound;
  getsockname(fd, (struct sockaddr *)&bound, &blen);
  int sfd = -1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0) sfd = open_stranger(&bound);
  if (connect(fd, (struct sockaddr *)&peer, sizeof peer) < 0) {
    int e = errno;
    close(fd);
    if (sfd >= 0) close(sfd);
    return throw_errno(env, "connect", e);
  }
  /* after connect: the local address the route chose (bound to 0.0.0.0, the caller's MTU lookup needs it) */
  blen = sizeof bound;
  getsockname(fd, (struct sockaddr *)&bound, &blen);

  fast_sock *s = calloc(1, sizeof *s);
  if (!s) {
    close(fd);
    return throw_errno(env, "calloc", ENOMEM);
  }
  s->fd = fd;
  s->sfd = sfd;
  s->closes_left = 1;
  s->env = env;
  open_socks++;
  s->recv_data = data;
  s->recv_cap = cap;
  uv_loop_t *loop;
  napi_value resource_name;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || napi_create_reference(env, argv[4], 1, &s->callback) != napi_ok ||
      napi_create_reference(env, argv[3], 1, &s->recv_ref) != napi_ok ||
      napi_create_string_utf8(env, "bootd.fastudp", NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_async_init(env, NULL, resource_name, &s->async) != napi_ok) {
    close(fd);
    free(s);
    napi_throw_error(env, NULL, "fastudp: cannot set up the socket");
    return NULL;
  }
  if (!flush_ready) {
    uv_check_init(loop, &flush_check);
    uv_check_start(&flush_check, on_check);
    uv_unref((uv_handle_t *)&flush_check);
    flush_ready = 1;
  }
  int rc = uv_poll_init(loop, &s->poll, fd);
  if (rc == 0) {
    s->poll.data = s;
    rc = uv_poll_start(&s->poll, UV_READABLE, on_readable);
  }
  if (rc != 0) {
    close(fd);
    if (sfd >= 0) close(sfd);
    napi_throw_error(env, NULL, uv_strerror(rc));
    return NULL; /* the refs leak on this path only, which never happens with a fresh fd */
  }
  if (sfd >= 0) {
    if (uv_poll_init(loop, &s->spoll, sfd) == 0) {
      s->spoll.data = s;
      s->closes_left++;
      uv_poll_start(&s->spoll, UV_READABLE, on_stranger);
    } else {
      close(sfd);
      s->sfd = -1;
    }
  }

  napi_value handle, out, addr, lport;
  char abuf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &bound.sin_addr, abuf, sizeof abuf);
  CHECK(env, napi_create_external(env, s, finalize, NULL, &handle));
  CHECK(env, napi_create_string_utf8(env, abuf, NAPI_AUTO_LENGTH, &addr));
  CHECK(env, napi_create_uint32(env, ntohs(bound.sin_port), &lport));
  CHECK(env, napi_create_array_with_length(env, 3, &out));
  napi_set_element(env, out, 0, handle);
  napi_set_element(env, out, 1, addr);
  napi_set_element(env, out, 2, lport);
  return out;
}

static fast_sock *unwrap(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return (fast_sock *)p;
}

static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], ret;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  fast_sock *s = argc >= 2 ? unwrap(env, argv[0]) : NULL;
  if (!s) {
    napi_throw_type_error(env, NULL, "send(handle, a[, b])");
    return NULL;
  }
  int err = EBADF;
  if (!s->closing) {
    struct iovec iov[2];
    int n = 0;
    for (size_t i = 1; i < argc && n < 2; i++) {
      void *d;
      size_t len;
      CHECK(env, napi_get_buffer_info(env, argv[i], &d, &len));
      iov[n].iov_base = d;
      iov[n].iov_len = len;
      n++;
    }
    err = send_iov(s, iov, n);
  }
  CHECK(env, napi_create_int32(env, err, &ret));
  return ret;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  fast_sock *s = argc >= 1 ? unwrap(env, argv[0]) : NULL;
  if (s) start_close(s);
  return NULL;
}

static napi_value js_pump(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  fast_sock *s = argc >= 2 ? unwrap(env, argv[0]) : NULL;
  if (!s) {
    napi_throw_type_error(env, NULL, "pump(handle, file, blksize, windowsize, state)");
    return NULL;
  }
  pump_stop(s);
  napi_valuetype t;
  CHECK(env, napi_typeof(env, argv[1], &t));
  if (t == napi_null || t == napi_undefined || s->closing) return NULL;
  uint32_t blksize, window;
  void *file;
  size_t flen;
  bool is_typed;
  napi_typedarray_type tt;
  size_t words;
  void *state;
  if (argc < 5 || napi_get_buffer_info(env, argv[1], &file, &flen) != napi_ok || napi_get_value_uint32(env, argv[2], &blksize) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &window) != napi_ok || napi_is_typedarray(env, argv[4], &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, argv[4], &tt, &words, &state, NULL, NULL) != napi_ok || tt != napi_int32_array || words < PUMP_WORDS ||
      blksize < 8 || blksize > 65464 || window < 1 || window > 64) {
    napi_throw_type_error(env, NULL, "pump(handle, file: Buffer, blksize 8..65464, windowsize 1..64, state: Int32Array(4))");
    return NULL;
  }
  CHECK(env, napi_create_reference(env, argv[1], 1, &s->pump_file_ref));
  CHECK(env, napi_create_reference(env, argv[4], 1, &s->pump_state_ref));
  s->pump_file = file;
  s->pump_len = flen;
  s->pump_blksize = blksize;
  s->pump_window = window;
  s->pump_state = state;
  return NULL;
}

static napi_value js_configure(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t us = 0;
  if (argc < 1 || napi_get_value_uint32(env, argv[0], &us) != napi_ok || us > 1000) {
    napi_throw_range_error(env, NULL, "configure(busyPollUs): 0..1000");
    return NULL;
  }
  spin_ns = (long)us * 1000L;
  return NULL;
}

/*
 * arpSet(ifname, ip, mac) -> 0 or errno. Installs the ARP entry ip -> mac on
 * ifname (SIOCSARP, ATF_COM), so that a DHCP reply can be unicast to yiaddr
 * at chaddr before the client can answer ARP (RFC 2131 section 4.1; dnsmasq
 * does the same). Needs CAP_NET_ADMIN; the caller falls back to broadcast.
 */
static int arp_fd = -1;

static napi_value js_arp_set(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char ifname[IFNAMSIZ + 1], ip[INET_ADDRSTRLEN + 1], mac[32];
  size_t n1 = 0, n2 = 0, n3 = 0;
  if (argc < 3 || napi_get_value_string_utf8(env, argv[0], ifname, sizeof ifname, &n1) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], ip, sizeof ip, &n2) != napi_ok ||
      napi_get_value_string_utf8(env, argv[2], mac, sizeof mac, &n3) != napi_ok || n1 == 0 || n1 >= IFNAMSIZ) {
    napi_throw_type_error(env, NULL, "arpSet(ifname, ip, mac)");
    return NULL;
  }
  struct arpreq req;
  memset(&req, 0, sizeof req);
  struct sockaddr_in *sin = (struct sockaddr_in *)&req.arp_pa;
  sin->sin_family = AF_INET;
  unsigned int b[6];
  if (inet_pton(AF_INET, ip, &sin->sin_addr) != 1 ||
      sscanf(mac, "%2x:%2x:%2x:%2x:%2x:%2x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6) {
    napi_throw_type_error(env, NULL, "arpSet: bad address");
    return NULL;
  }
  req.arp_ha.sa_family = ARPHRD_ETHER;
  for (int i = 0; i < 6; i++) req.arp_ha.sa_data[i] = (char)b[i];
  req.arp_flags = ATF_COM;
  memcpy(req.arp_dev, ifname, n1 + 1);
  int err = 0;
  if (arp_fd < 0) arp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (arp_fd < 0) err = errno;
  else if (ioctl(arp_fd, SIOCSARP, &req) < 0) err = errno;
  napi_value out;
  napi_create_int32(env, err, &out);
  return out;
}

/* unknownTids() -> datagrams from unknown transfer IDs answered (or dropped, for ERRORs) so far. */
static napi_value js_unknown_tids(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  napi_create_uint32(env, unknown_tid_total, &out);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, js_send, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
      {"configure", NULL, js_configure, NULL, NULL, NULL, napi_default, NULL},
      {"pump", NULL, js_pump, NULL, NULL, NULL, napi_default, NULL},
      {"arpSet", NULL, js_arp_set, NULL, NULL, NULL, napi_default, NULL},
      {"unknownTids", NULL, js_unknown_tids, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
