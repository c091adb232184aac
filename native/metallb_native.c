// metallb-ts native binding: the two things Node cannot do itself.
//   1. AF_PACKET sockets bound to one interface, with a classic BPF filter built in TypeScript; frames are read
//      on the libuv loop (uv_poll, no thread hop) into a Buffer the caller owns, so receiving allocates nothing.
//   2. bpf(2), as a bare syscall: attribute layouts, programs and maps are built in TypeScript (src/net/ebpf*.ts).
//   3. TCP-MD5 (RFC 2385): a TCP connection whose key is set before the SYN, handed back as a plain fd that
//      net.Socket({ fd }) adopts; and the key on an existing (listening) socket.
// Everything else (codecs, policy, timers) lives in TypeScript. Handles are small integers per Node environment,
// so nothing here depends on the garbage collector; sockets are closed explicitly or at environment teardown.
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_FRAMES_PER_WAKEUP 64
#define MAX_BATCH 1024

typedef struct packet_sock {
  uv_poll_t poll;
  int fd;
  int ifindex;
  int id;
  int closing;
  napi_env env;
  struct addon_state *st;
  napi_ref on_frame;
  napi_ref rx_ref;
  uint8_t *rx;
  size_t rx_len;
  napi_async_context async_ctx;
  // Latency tracing (packetTimestamps), off unless asked. For the frame of the current callback, in ns from its
  // kernel receive timestamp: timing[0] = frame read; timing[1] = send() of a reply on this socket called and
  // timing[2] = returned (-1 until one is). send() returns only once the kernel has carried the frame as far as it
  // goes synchronously (on a veth: the peer's receive path too), so [1] is when the reply left our hands.
  double *timing;
  napi_ref timing_ref;
  int64_t rx_ns;
} packet_sock;

typedef struct md5_conn {
  uv_poll_t poll;
  int fd;
  int id;
  int closing;
  int result_errno;
  napi_env env;
  struct addon_state *st;
  napi_ref callback;
  napi_async_context async_ctx;
} md5_conn;

// Open handles by id (JS holds the id): packet_sock * or md5_conn *, NULL where free.
typedef struct handle_table {
  void **slots;
  size_t cap;
} handle_table;

typedef struct addon_state {
  handle_table socks;
  handle_table conns;
  int tearing_down;
  handle_table sigs;
  size_t live;  // packet sockets, connections and signal watches not yet freed, closing ones included
  napi_async_cleanup_hook_handle cleanup_handle;
} addon_state;

// ---------------------------------------------------------------------------------------------------------------
// Errors: thrown as Error with `code` = the errno name (EPERM, ENODEV, ...) and a message naming the operation.

static const char *errno_name(int err) {
  const char *name = strerrorname_np(err);
  return name ? name : "EUNKNOWN";
}

static napi_value throw_errno(napi_env env, const char *op, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", op, strerror(err));
  napi_throw_error(env, errno_name(err), msg);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

// For a socket being set up: closes it and throws. `err` is an argument, so errno is read before close() runs.
static napi_value close_throw(napi_env env, int fd, const char *op, int err) {
  close(fd);
  return throw_errno(env, op, err);
}

#define NAPI_OK(call)                                                                                              \
  do {                                                                                                             \
    if ((call) != napi_ok) return NULL;                                                                            \
  } while (0)

static addon_state *state_of(napi_env env) {
  addon_state *st = NULL;
  napi_get_instance_data(env, (void **)&st);
  return st;
}

static int get_int(napi_env env, napi_value v, int32_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return 0;
  return napi_get_value_int32(env, v, out) == napi_ok;
}

static int get_buffer(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  bool is_buf = false;
  if (napi_is_buffer(env, v, &is_buf) != napi_ok || !is_buf) return 0;
  return napi_get_buffer_info(env, v, (void **)data, len) == napi_ok;
}

static int is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  return t == napi_null || t == napi_undefined;
}

// The call's first n arguments; those not passed are undefined, which every check below refuses (or, where an
// argument is optional, takes as absent).
static bool get_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  size_t argc = n;
  return napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok;
}

// An interface name, into name[IFNAMSIZ + 1]: its length (1 to 15 bytes), 0 when too short or long, -1 when not a
// string.
static int get_ifname(napi_env env, napi_value v, char *name) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, name, IFNAMSIZ + 1, &len) != napi_ok) return -1;
  return len > 0 && len < IFNAMSIZ ? (int)len : 0;
}

// A classic BPF program: a Buffer of 1 to BPF_MAXINSNS struct sock_filter (8 bytes each, host byte order).
#define FILTER_RULE "1 to 4096 8-byte sock_filter instructions"
static bool get_filter(napi_env env, napi_value v, struct sock_fprog *prog) {
  uint8_t *data;
  size_t len;
  if (!get_buffer(env, v, &data, &len) || len == 0 || len % 8 != 0 || len / 8 > BPF_MAXINSNS) return false;
  prog->len = (unsigned short)(len / 8);
  prog->filter = (struct sock_filter *)data;
  return true;
}

static void set_uint(napi_env env, napi_value obj, const char *key, uint32_t value) {
  napi_value v;
  napi_create_uint32(env, value, &v);
  napi_set_named_property(env, obj, key, v);
}

static napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

// Calls back into JS from a libuv callback: its own handle scope, and MakeCallback semantics (microtasks and
// nextTick run afterwards). An exception escaping the callback is reported as uncaught, like any event handler's.
static void call_js(napi_env env, napi_ref fn_ref, napi_async_context ctx, size_t argc, napi_value *argv) {
  napi_value fn, recv, result;
  if (napi_get_reference_value(env, fn_ref, &fn) != napi_ok || fn == NULL) return;
  napi_get_global(env, &recv);  // MakeCallback wants an object receiver
  napi_make_callback(env, ctx, recv, fn, argc, argv, &result);
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  }
}

// The handle with that id, or NULL when none is open under it.
static void *table_get(const handle_table *t, int32_t id) {
  return id >= 0 && (size_t)id < t->cap ? t->slots[id] : NULL;
}

// The lowest free id, the table doubled (first to `first_cap`) when full; -1 when out of memory.
static ssize_t table_free_id(handle_table *t, size_t first_cap) {
  size_t id = 0;
  while (id < t->cap && t->slots[id] != NULL) id++;
  if (id == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : first_cap;
    void **grown = realloc(t->slots, cap * sizeof *grown);
    if (!grown) return -1;
    memset(grown + t->cap, 0, (cap - t->cap) * sizeof *grown);
    t->slots = grown;
    t->cap = cap;
  }
  return (ssize_t)id;
}

// A handle's poll on fd, and the async context its callbacks run in (`resource` is what async_hooks see).
static int poll_init(napi_env env, const char *resource, uv_poll_t *poll, int fd, void *owner, napi_async_context *ctx) {
  napi_value name;
  napi_create_string_utf8(env, resource, NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, ctx);
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  int rc = uv_poll_init(loop, poll, fd);
  poll->data = owner;
  return rc;
}

// ---------------------------------------------------------------------------------------------------------------
// AF_PACKET

// A call on an open packet socket: its first n arguments, argv[0] the socket's id. NULL with an exception pending
// when the id is not open.
static packet_sock *sock_call(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  if (!get_args(env, info, n, argv)) return NULL;
  int32_t id;
  packet_sock *s = get_int(env, argv[0], &id) ? table_get(&state_of(env)->socks, id) : NULL;
  if (!s || s->closing) {
    napi_throw_error(env, "ERR_INVALID_HANDLE", "packet socket handle is not open");
    return NULL;
  }
  return s;
}

static void teardown_step(addon_state *st);

static void packet_closed(uv_handle_t *h) {
  packet_sock *s = (packet_sock *)h->data;
  addon_state *st = s->st;
  close(s->fd);
  if (!st->tearing_down) {
    napi_delete_reference(s->env, s->on_frame);
    napi_delete_reference(s->env, s->rx_ref);
    if (s->timing_ref) napi_delete_reference(s->env, s->timing_ref);
    napi_async_destroy(s->env, s->async_ctx);
  }
  free(s);
  st->live--;
  if (st->tearing_down) teardown_step(st);
}

static void packet_start_close(addon_state *st, packet_sock *s) {
  if (s->closing) return;
  s->closing = 1;
  st->socks.slots[s->id] = NULL;
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, packet_closed);
}

static int64_t realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);  // the clock of SO_TIMESTAMPNS
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

// recvfrom() with the frame's kernel receive time (SO_TIMESTAMPNS), for latency tracing only.
static ssize_t recv_timed(packet_sock *s, struct sockaddr_ll *from, socklen_t *fromlen) {
  struct iovec iov = {.iov_base = s->rx, .iov_len = s->rx_len};
  union {
    char buf[CMSG_SPACE(sizeof(struct timespec))];
    struct cmsghdr align;
  } ctrl;
  struct msghdr mh = {.msg_name = from, .msg_namelen = *fromlen, .msg_iov = &iov, .msg_iovlen = 1,
                      .msg_control = ctrl.buf, .msg_controllen = sizeof ctrl.buf};
  ssize_t n = recvmsg(s->fd, &mh, MSG_DONTWAIT | MSG_TRUNC);
  if (n < 0) return n;
  int64_t now = realtime_ns();
  s->rx_ns = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
      struct timespec ts;
      memcpy(&ts, CMSG_DATA(c), sizeof ts);
      s->rx_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    }
  }
  s->timing[0] = s->rx_ns ? (double)(now - s->rx_ns) : -1;
  s->timing[1] = s->timing[2] = -1;
  return n;
}

// onFrame(-errno, 0, 0): the socket failed.
static void frame_error(packet_sock *s, int neg_errno) {
  napi_value argv[3];
  napi_create_int32(s->env, neg_errno, &argv[0]);
  napi_create_int32(s->env, 0, &argv[1]);
  napi_create_int32(s->env, 0, &argv[2]);
  call_js(s->env, s->on_frame, s->async_ctx, 3, argv);
}

static void packet_readable(uv_poll_t *poll, int status, int events) {
  packet_sock *s = (packet_sock *)poll->data;
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  if (status < 0) {
    frame_error(s, status);
    napi_close_handle_scope(env, scope);
    return;
  }
  for (int i = 0; i < MAX_FRAMES_PER_WAKEUP && !s->closing; i++) {
    struct sockaddr_ll from;
    socklen_t fromlen = sizeof from;
    // MSG_TRUNC: the return value is the frame's real length even when the buffer held less of it.
    ssize_t n = s->timing ? recv_timed(s, &from, &fromlen)
                          : recvfrom(s->fd, s->rx, s->rx_len, MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&from, &fromlen);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
      frame_error(s, -errno);
      break;
    }
    size_t captured = (size_t)n < s->rx_len ? (size_t)n : s->rx_len;
    napi_value argv[3];
    napi_create_uint32(env, (uint32_t)captured, &argv[0]);
    napi_create_uint32(env, from.sll_pkttype, &argv[1]);
    napi_create_uint32(env, (uint32_t)n, &argv[2]);
    call_js(env, s->on_frame, s->async_ctx, 3, argv);
  }
  napi_close_handle_scope(env, scope);
}

// packetOpen(ifname: string, protocol: number, filter: Buffer | null, rx: Buffer, onFrame(len, pkttype, wireLen),
//            receiveBufferBytes: number) -> { id, ifindex }
// The filter is an array of struct sock_filter (8 bytes each, host byte order), attached before the socket is
// bound so that no unfiltered frame is ever queued. receiveBufferBytes > 0 sizes the kernel's receive queue (a
// burst of small frames fills the default one quickly: each costs a whole skb); root may exceed rmem_max.
static napi_value packet_open(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) return throw_type(env, "packetOpen(ifname, protocol, filter, rx, onFrame, receiveBufferBytes)");
  char ifname[IFNAMSIZ + 1];
  int ifname_len = get_ifname(env, argv[0], ifname);
  if (ifname_len < 0) return throw_type(env, "ifname must be a string");
  if (ifname_len == 0) return throw_type(env, "ifname must be 1 to 15 bytes");
  int32_t protocol;
  if (!get_int(env, argv[1], &protocol) || protocol < 0 || protocol > 0xffff)
    return throw_type(env, "protocol must be an EtherType (0..65535)");
  struct sock_fprog filter = {0};
  if (!is_nullish(env, argv[2]) && !get_filter(env, argv[2], &filter))
    return throw_type(env, "filter must be a Buffer of " FILTER_RULE);
  uint8_t *rx;
  size_t rx_len;
  if (!get_buffer(env, argv[3], &rx, &rx_len) || rx_len < 64) return throw_type(env, "rx must be a Buffer of >= 64 bytes");
  napi_valuetype t;
  napi_typeof(env, argv[4], &t);
  if (t != napi_function) return throw_type(env, "onFrame must be a function");
  int32_t rcvbuf;
  if (!get_int(env, argv[5], &rcvbuf) || rcvbuf < 0) return throw_type(env, "receiveBufferBytes must be >= 0");

  unsigned ifindex = if_nametoindex(ifname);
  if (ifindex == 0) return throw_errno(env, "if_nametoindex", errno);

  // Protocol 0 receives nothing until bind(), so the filter is in place before the first frame is queued.
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket(AF_PACKET, SOCK_RAW)", errno);
  if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);  // without CAP_NET_ADMIN: capped at rmem_max
  if (filter.filter && setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &filter, sizeof filter) < 0)
    return close_throw(env, fd, "setsockopt(SO_ATTACH_FILTER)", errno);
  struct sockaddr_ll addr = {0};
  addr.sll_family = AF_PACKET;
  addr.sll_protocol = htons((uint16_t)protocol);
  addr.sll_ifindex = (int)ifindex;
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) return close_throw(env, fd, "bind(AF_PACKET)", errno);

  addon_state *st = state_of(env);
  ssize_t id = table_free_id(&st->socks, 16);
  if (id < 0) return close_throw(env, fd, "realloc", ENOMEM);
  packet_sock *s = calloc(1, sizeof *s);
  if (!s) return close_throw(env, fd, "calloc", ENOMEM);
  s->fd = fd;
  s->ifindex = (int)ifindex;
  s->id = (int)id;
  s->env = env;
  s->st = st;
  s->rx = rx;
  s->rx_len = rx_len;
  napi_create_reference(env, argv[4], 1, &s->on_frame);
  napi_create_reference(env, argv[3], 1, &s->rx_ref);
  int rc = poll_init(env, "metallb:packet", &s->poll, fd, s, &s->async_ctx);
  if (rc == 0) rc = uv_poll_start(&s->poll, UV_READABLE, packet_readable);
  if (rc != 0) {
    napi_delete_reference(env, s->on_frame);
    napi_delete_reference(env, s->rx_ref);
    napi_async_destroy(env, s->async_ctx);
    free(s);
    return close_throw(env, fd, "uv_poll_start", -rc);
  }
  st->socks.slots[id] = s;
  st->live++;

  napi_value result;
  NAPI_OK(napi_create_object(env, &result));
  set_uint(env, result, "id", (uint32_t)id);
  set_uint(env, result, "ifindex", ifindex);
  return result;
}

// packetSend(id, buf, offset, length): one frame, sent on the bound interface as is (Ethernet header included).
static napi_value packet_send(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  packet_sock *s = sock_call(env, info, 4, argv);
  if (!s) return NULL;
  uint8_t *buf;
  size_t len;
  int32_t off, n;
  if (!get_buffer(env, argv[1], &buf, &len) || !get_int(env, argv[2], &off) || !get_int(env, argv[3], &n) || off < 0 ||
      n <= 0 || (size_t)off + (size_t)n > len)
    return throw_type(env, "packetSend(id, buf, offset, length) with the range inside buf");
  int64_t called = s->timing ? realtime_ns() : 0;
  ssize_t sent = send(s->fd, buf + off, (size_t)n, MSG_DONTWAIT);
  if (sent < 0) return throw_errno(env, "send(AF_PACKET)", errno);
  if (s->timing && s->rx_ns) {
    s->timing[1] = (double)(called - s->rx_ns);
    s->timing[2] = (double)(realtime_ns() - s->rx_ns);
  }
  return undefined(env);
}

// packetSendBatch(id, buf, stride, count) -> frames sent. Frames are `stride` bytes apart and `stride` long; one
// sendmmsg() call for up to 1024 of them, so a takeover of many addresses costs few system calls.
static napi_value packet_send_batch(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  packet_sock *s = sock_call(env, info, 4, argv);
  if (!s) return NULL;
  uint8_t *buf;
  size_t len;
  int32_t stride, count;
  if (!get_buffer(env, argv[1], &buf, &len) || !get_int(env, argv[2], &stride) || !get_int(env, argv[3], &count) ||
      stride <= 0 || count < 0 || (size_t)stride * (size_t)count > len)
    return throw_type(env, "packetSendBatch(id, buf, stride, count) with stride*count <= buf.length");
  struct mmsghdr msgs[64];
  struct iovec iov[64];
  int done = 0;
  while (done < count) {
    int chunk = count - done < 64 ? count - done : 64;
    for (int i = 0; i < chunk; i++) {
      iov[i].iov_base = buf + (size_t)(done + i) * (size_t)stride;
      iov[i].iov_len = (size_t)stride;
      memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int r = sendmmsg(s->fd, msgs, (unsigned)chunk, MSG_DONTWAIT);
    if (r < 0) {
      if (done > 0 && (errno == EAGAIN || errno == ENOBUFS)) break;
      return throw_errno(env, "sendmmsg(AF_PACKET)", errno);
    }
    done += r;
    if (r < chunk) break;
  }
  napi_value result;
  napi_create_int32(env, done, &result);
  return result;
}

// packetMembership(id, add, mac): PACKET_ADD/DROP_MEMBERSHIP for a link-layer multicast address, so a NIC with a
// hardware filter passes those frames without the IP stack joining anything.
static napi_value packet_membership(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  packet_sock *s = sock_call(env, info, 3, argv);
  if (!s) return NULL;
  bool add;
  uint8_t *mac;
  size_t mac_len;
  if (napi_get_value_bool(env, argv[1], &add) != napi_ok || !get_buffer(env, argv[2], &mac, &mac_len) || mac_len != 6)
    return throw_type(env, "packetMembership(id, add: boolean, mac: 6-byte Buffer)");
  struct packet_mreq mr = {0};
  mr.mr_ifindex = s->ifindex;
  mr.mr_type = PACKET_MR_MULTICAST;
  mr.mr_alen = 6;
  memcpy(mr.mr_address, mac, 6);
  if (setsockopt(s->fd, SOL_PACKET, add ? PACKET_ADD_MEMBERSHIP : PACKET_DROP_MEMBERSHIP, &mr, sizeof mr) < 0)
    return throw_errno(env, add ? "setsockopt(PACKET_ADD_MEMBERSHIP)" : "setsockopt(PACKET_DROP_MEMBERSHIP)", errno);
  return undefined(env);
}

// packetStats(id) -> { packets, drops } since the previous call (the kernel resets them on read).
static napi_value packet_stats(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  packet_sock *s = sock_call(env, info, 1, argv);
  if (!s) return NULL;
  struct tpacket_stats ts;
  socklen_t len = sizeof ts;
  if (getsockopt(s->fd, SOL_PACKET, PACKET_STATISTICS, &ts, &len) < 0)
    return throw_errno(env, "getsockopt(PACKET_STATISTICS)", errno);
  napi_value result;
  NAPI_OK(napi_create_object(env, &result));
  set_uint(env, result, "packets", ts.tp_packets);
  set_uint(env, result, "drops", ts.tp_drops);
  return result;
}

// SO_ATTACH_FILTER: replaces the socket's filter, if it had one, atomically.
static napi_value attach_prog(napi_env env, int fd, const struct sock_fprog *prog) {
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, prog, sizeof *prog) < 0)
    return throw_errno(env, "setsockopt(SO_ATTACH_FILTER)", errno);
  return undefined(env);
}

// packetSetFilter(id, filter: Buffer): replaces the socket's BPF filter, atomically (SO_ATTACH_FILTER on a socket
// that has one swaps it; frames already queued stay queued).
static napi_value packet_set_filter(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  packet_sock *s = sock_call(env, info, 2, argv);
  if (!s) return NULL;
  struct sock_fprog prog;
  if (!get_filter(env, argv[1], &prog)) return throw_type(env, "filter must be a Buffer of " FILTER_RULE);
  return attach_prog(env, s->fd, &prog);
}

// packetTimestamps(id, timing: Float64Array (>= 3, over an ArrayBuffer of its own) | null): latency tracing on
// (SO_TIMESTAMPNS; see packet_sock.timing) or off. For benchmarks and diagnosis: it timestamps every frame the
// host receives, on every socket, while on.
static napi_value packet_timestamps(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  packet_sock *s = sock_call(env, info, 2, argv);
  if (!s) return NULL;
  double *timing = NULL;
  if (!is_nullish(env, argv[1])) {
    bool is_ta = false;
    napi_typedarray_type type;
    size_t length;
    void *data;
    if (napi_is_typedarray(env, argv[1], &is_ta) != napi_ok || !is_ta ||
        napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok ||
        type != napi_float64_array || length < 3)
      return throw_type(env, "packetTimestamps(id, timing: Float64Array of >= 3 | null)");
    timing = data;
  }
  int on = timing != NULL;
  if (setsockopt(s->fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) < 0)
    return throw_errno(env, "setsockopt(SO_TIMESTAMPNS)", errno);
  if (s->timing_ref) napi_delete_reference(env, s->timing_ref);
  s->timing_ref = NULL;
  if (timing) NAPI_OK(napi_create_reference(env, argv[1], 1, &s->timing_ref));
  s->timing = timing;
  s->rx_ns = 0;
  return undefined(env);
}

// packetRef(id, ref): whether an open socket keeps the event loop (the process) alive.
static napi_value packet_ref(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  packet_sock *s = sock_call(env, info, 2, argv);
  if (!s) return NULL;
  bool ref;
  if (napi_get_value_bool(env, argv[1], &ref) != napi_ok) return throw_type(env, "packetRef(id, ref: boolean)");
  if (ref)
    uv_ref((uv_handle_t *)&s->poll);
  else
    uv_unref((uv_handle_t *)&s->poll);
  return undefined(env);
}

// packetClose(id): idempotent for a handle that is already closed.
static napi_value packet_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int32_t id;
  if (!get_int(env, argv[0], &id)) return throw_type(env, "packetClose(id)");
  addon_state *st = state_of(env);
  packet_sock *s = table_get(&st->socks, id);
  if (s) packet_start_close(st, s);
  return undefined(env);
}

// ---------------------------------------------------------------------------------------------------------------
// TCP-MD5 (RFC 2385)

static int fill_sockaddr(int family, const uint8_t *addr, size_t addr_len, int port, uint32_t scope_id,
                         struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  if (family == 4 && addr_len == 4) {
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    memcpy(&sin->sin_addr, addr, 4);
    *len = sizeof *sin;
    return 1;
  }
  if (family == 6 && addr_len == 16) {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    sin6->sin6_scope_id = scope_id;
    memcpy(&sin6->sin6_addr, addr, 16);
    *len = sizeof *sin6;
    return 1;
  }
  return 0;
}

// prefix_len < 0: the key is for that one address (TCP_MD5SIG); else for the prefix (TCP_MD5SIG_EXT). An empty key
// removes it.
static int set_md5(int fd, int family, const uint8_t *peer, size_t peer_len, int prefix_len, const uint8_t *key,
                   size_t key_len) {
  struct tcp_md5sig sig;
  memset(&sig, 0, sizeof sig);
  socklen_t alen;
  if (!fill_sockaddr(family, peer, peer_len, 0, 0, &sig.tcpm_addr, &alen)) return EINVAL;
  if (key_len > TCP_MD5SIG_MAXKEYLEN) return EINVAL;
  sig.tcpm_keylen = (uint16_t)key_len;
  memcpy(sig.tcpm_key, key, key_len);
  int opt = TCP_MD5SIG;
  if (prefix_len >= 0) {
    sig.tcpm_flags = TCP_MD5SIG_FLAG_PREFIX;
    sig.tcpm_prefixlen = (uint8_t)prefix_len;
    opt = TCP_MD5SIG_EXT;
  }
  if (setsockopt(fd, IPPROTO_TCP, opt, &sig, sizeof sig) < 0) return errno;
  return 0;
}

// tcpMd5SetKey(fd, family: 4|6, peer: Buffer, prefixLength: number (-1: that address only), key: Buffer)
// On a listening socket it makes connections from that peer (or prefix) need the key; on an unconnected one, it
// applies to the connection made next.
static napi_value tcp_md5_set_key(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  int32_t fd, family, prefix;
  uint8_t *peer, *key;
  size_t peer_len, key_len;
  if (!get_int(env, argv[0], &fd) || !get_int(env, argv[1], &family) ||
      !get_buffer(env, argv[2], &peer, &peer_len) || !get_int(env, argv[3], &prefix) ||
      !get_buffer(env, argv[4], &key, &key_len))
    return throw_type(env, "tcpMd5SetKey(fd, family, peer: Buffer, prefixLength, key: Buffer)");
  if (prefix > (family == 4 ? 32 : 128)) return throw_type(env, "prefixLength is longer than the address");
  int err = set_md5(fd, family, peer, peer_len, prefix, key, key_len);
  if (err) return throw_errno(env, "setsockopt(TCP_MD5SIG)", err);
  return undefined(env);
}

static void md5_closed(uv_handle_t *h) {
  md5_conn *c = (md5_conn *)h->data;
  napi_env env = c->env;
  addon_state *st = c->st;
  if (st->tearing_down) {
    close(c->fd);
    free(c);
    st->live--;
    teardown_step(st);
    return;
  }
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value argv[3];
  if (c->result_errno) {
    close(c->fd);
    char msg[256];
    snprintf(msg, sizeof msg, "connect: %s", strerror(c->result_errno));
    napi_create_string_utf8(env, errno_name(c->result_errno), NAPI_AUTO_LENGTH, &argv[0]);
    napi_create_int32(env, -1, &argv[1]);
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &argv[2]);
  } else {
    napi_get_null(env, &argv[0]);
    napi_create_int32(env, c->fd, &argv[1]);
    napi_get_null(env, &argv[2]);
  }
  call_js(env, c->callback, c->async_ctx, 3, argv);
  napi_close_handle_scope(env, scope);
  napi_delete_reference(env, c->callback);
  napi_async_destroy(env, c->async_ctx);
  free(c);
  st->live--;
}

static void md5_finish(addon_state *st, md5_conn *c, int err) {
  if (c->closing) return;
  c->closing = 1;
  c->result_errno = err;
  st->conns.slots[c->id] = NULL;
  uv_poll_stop(&c->poll);
  // The fd is handed over only once libuv has forgotten it (close callback), so net.Socket can poll it itself.
  uv_close((uv_handle_t *)&c->poll, md5_closed);
}

static void md5_writable(uv_poll_t *poll, int status, int events) {
  md5_conn *c = (md5_conn *)poll->data;
  int err = 0;
  // libuv reports POLLERR as UV_EBADF: a refused or unreachable connect (RST, ICMP) lands here, and the socket's
  // own error says which it was.
  socklen_t len = sizeof err;
  if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  if (err == 0 && status < 0) err = -status;
  md5_finish(c->st, c, err);
}

// IP_TTL, and IPV6_UNICAST_HOPS on an IPv6 socket: the TTL / hop limit of unicast packets the socket sends. IP_TTL
// on an AF_INET6 socket is what IPv4-mapped traffic uses, so both are set there.
static int set_hop_limit(int fd, int hops) {
  int domain = 0;
  socklen_t len = sizeof domain;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0) return errno;
  if (domain != AF_INET && domain != AF_INET6) return EAFNOSUPPORT;
  if (setsockopt(fd, IPPROTO_IP, IP_TTL, &hops, sizeof hops) < 0) return errno;
  if (domain == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof hops) < 0) return errno;
  return 0;
}

// attachFilter(fd, filter: Buffer of sock_filter, drain?: boolean): SO_ATTACH_FILTER on a socket Node already has
// (a UDP listener), replacing any filter it had. A filter on a UDP socket sees the datagram from its UDP header; the
// IP header is at SKF_NET_OFF. The kernel checks only datagrams queued after the filter is there: with `drain`, the
// ones already queued (arrived between bind and now, or under a looser filter) are discarded, unread. Returns how many.
static napi_value attach_filter(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  int32_t fd;
  struct sock_fprog prog;
  bool drain = false;
  if (!get_int(env, argv[0], &fd) || !get_filter(env, argv[1], &prog) ||
      (!is_nullish(env, argv[2]) && napi_get_value_bool(env, argv[2], &drain) != napi_ok))
    return throw_type(env, "attachFilter(fd, filter: Buffer of " FILTER_RULE ", drain?: boolean)");
  if (!attach_prog(env, fd, &prog)) return NULL;
  int32_t drained = 0;
  // Bounded: a flood arriving meanwhile is filtered already, and need not be read to the end.
  while (drain && drained < 4096 && recv(fd, NULL, 0, MSG_DONTWAIT | MSG_TRUNC) >= 0) drained++;
  napi_value out;
  napi_create_int32(env, drained, &out);
  return out;
}

// setHopLimit(fd, hops: 1..255): on a socket Node already has. Its presence also says that tcpMd5Connect takes `ttl`.
static napi_value set_hop_limit_js(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int32_t fd, hops;
  if (!get_int(env, argv[0], &fd) || !get_int(env, argv[1], &hops)) return throw_type(env, "setHopLimit(fd, hops)");
  if (hops < 1 || hops > 255) return throw_type(env, "hops must be 1..255");
  int err = set_hop_limit(fd, hops);
  if (err) return throw_errno(env, "setsockopt(IP_TTL/IPV6_UNICAST_HOPS)", err);
  return undefined(env);
}

// tcpMd5Connect(family, peer: Buffer, port, key: Buffer, local: Buffer | null, localPort, scopeId, callback,
//               device?: string | null, ttl?: number)
//   -> id; callback(errCode: string | null, fd: number, message: string | null) once: connected, failed or cancelled.
// An empty key connects without TCP-MD5; a device binds the socket to it first (a VRF master: the VRF's routes); a
// ttl (1..255) is the TTL / hop limit of every segment, the SYN included (single-hop eBGP: 1; multihop: 255).
static napi_value tcp_md5_connect(napi_env env, napi_callback_info info) {
  napi_value argv[10];
  if (!get_args(env, info, 10, argv)) return NULL;
  int32_t family, port, local_port, scope_id;
  uint8_t *peer, *key, *local = NULL;
  size_t peer_len, key_len, local_len = 0;
  napi_valuetype t;
  napi_typeof(env, argv[7], &t);
  if (!get_int(env, argv[0], &family) || !get_buffer(env, argv[1], &peer, &peer_len) ||
      !get_int(env, argv[2], &port) || !get_buffer(env, argv[3], &key, &key_len) ||
      (!is_nullish(env, argv[4]) && !get_buffer(env, argv[4], &local, &local_len)) ||
      !get_int(env, argv[5], &local_port) || !get_int(env, argv[6], &scope_id) || t != napi_function)
    return throw_type(env, "tcpMd5Connect(family, peer, port, key, local, localPort, scopeId, callback)");
  if (port <= 0 || port > 65535 || local_port < 0 || local_port > 65535)
    return throw_type(env, "ports must be in 1..65535 (localPort 0..65535)");
  if (key_len > TCP_MD5SIG_MAXKEYLEN) return throw_type(env, "key must be at most 80 bytes");
  char device[IFNAMSIZ + 1];
  int device_len = 0;
  if (!is_nullish(env, argv[8]) && (device_len = get_ifname(env, argv[8], device)) <= 0)
    return throw_type(env, "device must be an interface name (1 to 15 characters)");
  int32_t ttl = 0;
  if (!is_nullish(env, argv[9]) && (!get_int(env, argv[9], &ttl) || ttl < 1 || ttl > 255))
    return throw_type(env, "ttl must be 1..255");

  struct sockaddr_storage dst;
  socklen_t dst_len;
  if (!fill_sockaddr(family, peer, peer_len, port, (uint32_t)scope_id, &dst, &dst_len))
    return throw_type(env, "peer must be 4 bytes (family 4) or 16 bytes (family 6)");
  int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket(SOCK_STREAM)", errno);
  if (device_len > 0 && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, device, (socklen_t)device_len) < 0)
    return close_throw(env, fd, "setsockopt(SO_BINDTODEVICE)", errno);
  int err = key_len > 0 ? set_md5(fd, family, peer, peer_len, -1, key, key_len) : 0;
  if (err) return close_throw(env, fd, "setsockopt(TCP_MD5SIG)", err);
  err = ttl > 0 ? set_hop_limit(fd, ttl) : 0;
  if (err) return close_throw(env, fd, "setsockopt(IP_TTL/IPV6_UNICAST_HOPS)", err);
  if (local || local_port) {
    struct sockaddr_storage src;
    socklen_t src_len;
    uint8_t any[16] = {0};
    if (!fill_sockaddr(family, local ? local : any, local ? local_len : (family == 4 ? 4 : 16), local_port,
                       (uint32_t)scope_id, &src, &src_len)) {
      close(fd);
      return throw_type(env, "local address must be of the peer's family");
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&src, src_len) < 0) return close_throw(env, fd, "bind", errno);
  }
  int connect_errno = 0;
  if (connect(fd, (struct sockaddr *)&dst, dst_len) < 0 && errno != EINPROGRESS) connect_errno = errno;

  addon_state *st = state_of(env);
  ssize_t id = table_free_id(&st->conns, 8);
  if (id < 0) return close_throw(env, fd, "realloc", ENOMEM);
  md5_conn *c = calloc(1, sizeof *c);
  if (!c) return close_throw(env, fd, "calloc", ENOMEM);
  c->fd = fd;
  c->id = (int)id;
  c->env = env;
  c->st = st;
  napi_create_reference(env, argv[7], 1, &c->callback);
  int rc = poll_init(env, "metallb:tcpMd5Connect", &c->poll, fd, c, &c->async_ctx);
  if (rc != 0) {
    napi_delete_reference(env, c->callback);
    napi_async_destroy(env, c->async_ctx);
    free(c);
    return close_throw(env, fd, "uv_poll_init", -rc);
  }
  st->conns.slots[id] = c;
  st->live++;
  if (connect_errno) {
    md5_finish(st, c, connect_errno);  // reported through the callback, like any asynchronous failure
  } else {
    rc = uv_poll_start(&c->poll, UV_WRITABLE, md5_writable);
    if (rc != 0) md5_finish(st, c, -rc);
  }
  napi_value result;
  napi_create_int32(env, (int32_t)id, &result);
  return result;
}

// bindToDevice(fd, ifname): SO_BINDTODEVICE on a socket Node already has (a UDP socket, a listener), so that it
// sends and receives in that device's VRF only.
static napi_value bind_to_device(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int32_t fd;
  char device[IFNAMSIZ + 1];
  int device_len = 0;
  if (!get_int(env, argv[0], &fd) || (device_len = get_ifname(env, argv[1], device)) <= 0)
    return throw_type(env, "bindToDevice(fd, ifname: 1 to 15 characters)");
  if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, device, (socklen_t)device_len) < 0)
    return throw_errno(env, "setsockopt(SO_BINDTODEVICE)", errno);
  return undefined(env);
}

// tcpMd5Cancel(id): closes a connection attempt still in progress; its callback gets ECANCELED.
static napi_value tcp_md5_cancel(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int32_t id;
  if (!get_int(env, argv[0], &id)) return throw_type(env, "tcpMd5Cancel(id)");
  addon_state *st = state_of(env);
  md5_conn *c = table_get(&st->conns, id);
  if (c) md5_finish(st, c, ECANCELED);
  return undefined(env);
}

// bpf(cmd, attr: Buffer, pointers?: [offset, Buffer | null][]): the bpf(2) syscall on `attr` (union bpf_attr, laid
// out in TypeScript). Fields that hold user pointers (instructions, license, log, key, value) cannot be written from
// JavaScript: each [offset, buffer] pair stores the buffer's address as a u64 at that offset of attr first (null
// stores 0). Returns the syscall's result (a new fd, or 0); throws with `code` = the errno name.
static napi_value bpf_syscall(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  int32_t cmd;
  uint8_t *attr;
  size_t attr_len;
  if (!get_int(env, argv[0], &cmd) || !get_buffer(env, argv[1], &attr, &attr_len) || attr_len == 0)
    return throw_type(env, "bpf(cmd: number, attr: Buffer, pointers?: [offset, Buffer | null][])");
  if (!is_nullish(env, argv[2])) {
    bool is_array = false;
    uint32_t n = 0;
    NAPI_OK(napi_is_array(env, argv[2], &is_array));
    if (!is_array) return throw_type(env, "bpf: pointers must be an array of [offset, Buffer | null]");
    NAPI_OK(napi_get_array_length(env, argv[2], &n));
    for (uint32_t i = 0; i < n; i++) {
      napi_value pair, off_v, buf_v;
      int32_t off;
      uint8_t *data = NULL;
      size_t len = 0;
      NAPI_OK(napi_get_element(env, argv[2], i, &pair));
      NAPI_OK(napi_get_element(env, pair, 0, &off_v));
      NAPI_OK(napi_get_element(env, pair, 1, &buf_v));
      if (!get_int(env, off_v, &off) || off < 0 || (size_t)off + 8 > attr_len || (off & 7) != 0)
        return throw_type(env, "bpf: a pointer offset must be 8-aligned and inside attr");
      if (!is_nullish(env, buf_v) && !get_buffer(env, buf_v, &data, &len))
        return throw_type(env, "bpf: a pointer must be a Buffer or null");
      uint64_t addr = (uint64_t)(uintptr_t)data;
      memcpy(attr + off, &addr, sizeof addr);
    }
  }
  long r = syscall(__NR_bpf, cmd, attr, (unsigned int)attr_len);
  if (r < 0) {
    char op[32];
    snprintf(op, sizeof op, "bpf(cmd %d)", cmd);
    return throw_errno(env, op, errno);
  }
  napi_value result;
  napi_create_int64(env, r, &result);
  return result;
}

// ---------------------------------------------------------------------------------------------------------------

// Signals on this thread's own loop. libuv hands a process signal to every uv_signal_t watching it, whatever loop it
// belongs to, so a worker thread hears SIGTERM while the main thread is busy: Node's process.on('SIGTERM') runs on
// the main thread only, after whatever that thread is doing (the speaker's gossip thread leaves at once this way).

typedef struct signal_watch {
  uv_signal_t sig;
  int id;
  int closing;
  napi_env env;
  struct addon_state *st;
  napi_ref callback;
  napi_async_context async_ctx;
} signal_watch;

static void signal_fired(uv_signal_t *h, int signum) {
  signal_watch *w = (signal_watch *)h->data;
  if (w->closing || w->st->tearing_down) return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(w->env, &scope) != napi_ok) return;
  napi_value argv[1];
  napi_create_int32(w->env, signum, &argv[0]);
  call_js(w->env, w->callback, w->async_ctx, 1, argv);
  napi_close_handle_scope(w->env, scope);
}

static void signal_closed(uv_handle_t *h) {
  signal_watch *w = (signal_watch *)h->data;
  addon_state *st = w->st;
  if (!st->tearing_down) {
    if (w->callback) napi_delete_reference(w->env, w->callback);
    if (w->async_ctx) napi_async_destroy(w->env, w->async_ctx);
  }
  free(w);
  st->live--;
  if (st->tearing_down) teardown_step(st);
}

static void signal_start_close(addon_state *st, signal_watch *w) {
  if (w->closing) return;
  w->closing = 1;
  st->sigs.slots[w->id] = NULL;
  uv_signal_stop(&w->sig);
  uv_close((uv_handle_t *)&w->sig, signal_closed);
}

// signalWatch(signum, callback(signum)): an id for signalUnwatch. The watch does not keep the loop alive.
static napi_value signal_watch_js(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int32_t signum;
  napi_valuetype t;
  if (!get_int(env, argv[0], &signum) || signum <= 0 || signum > 64 || napi_typeof(env, argv[1], &t) != napi_ok ||
      t != napi_function)
    return throw_type(env, "signalWatch(signum: 1..64, callback: function)");
  addon_state *st = state_of(env);
  uv_loop_t *loop;
  NAPI_OK(napi_get_uv_event_loop(env, &loop));
  ssize_t id = table_free_id(&st->sigs, 4);
  if (id < 0) return throw_errno(env, "signalWatch", ENOMEM);
  signal_watch *w = calloc(1, sizeof *w);
  if (!w) return throw_errno(env, "signalWatch", ENOMEM);
  int err = uv_signal_init(loop, &w->sig);
  if (err) {
    free(w);
    return throw_errno(env, "uv_signal_init", -err);
  }
  w->id = (int)id;
  w->env = env;
  w->st = st;
  w->sig.data = w;
  st->sigs.slots[id] = w;
  st->live++;
  uv_unref((uv_handle_t *)&w->sig);
  napi_value name;
  if (napi_create_reference(env, argv[1], 1, &w->callback) != napi_ok ||
      napi_create_string_utf8(env, "metallb:signal", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &w->async_ctx) != napi_ok) {
    signal_start_close(st, w);
    return NULL;
  }
  err = uv_signal_start(&w->sig, signal_fired, signum);
  if (err) {
    signal_start_close(st, w);
    return throw_errno(env, "uv_signal_start", -err);
  }
  napi_value out;
  NAPI_OK(napi_create_int32(env, (int32_t)id, &out));
  return out;
}

// signalUnwatch(id): idempotent.
static napi_value signal_unwatch_js(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int32_t id;
  if (!get_int(env, argv[0], &id)) return throw_type(env, "signalUnwatch(id)");
  addon_state *st = state_of(env);
  signal_watch *w = table_get(&st->sigs, id);
  if (w) signal_start_close(st, w);
  return undefined(env);
}

// exitProcess(status): ends the whole process now, from any thread (a worker's process.exit ends only its thread:
// the speaker's gossip thread honours a second SIGTERM this way while the main thread is busy). _exit, not exit: no
// exit handlers run on this thread while the main thread still runs JavaScript; write what must be said first.
static napi_value exit_process_js(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int32_t status;
  if (!get_int(env, argv[0], &status) || status < 0 || status > 255) return throw_type(env, "exitProcess(status: 0..255)");
  _exit(status);
}

// ---------------------------------------------------------------------------------------------------------------


// Environment teardown (process exit, worker end): every handle is closed through libuv, so that the loop closes
// cleanly; no JS is called any more. Node waits until the async cleanup hook is removed.
static void teardown_step(addon_state *st) {
  if (st->live == 0 && st->cleanup_handle) {
    napi_async_cleanup_hook_handle h = st->cleanup_handle;
    st->cleanup_handle = NULL;
    napi_remove_async_cleanup_hook(h);
  }
}

static void cleanup(napi_async_cleanup_hook_handle handle, void *arg) {
  addon_state *st = (addon_state *)arg;
  st->tearing_down = 1;
  st->cleanup_handle = handle;
  for (size_t i = 0; i < st->socks.cap; i++)
    if (st->socks.slots[i]) packet_start_close(st, st->socks.slots[i]);
  for (size_t i = 0; i < st->conns.cap; i++)
    if (st->conns.slots[i]) md5_finish(st, st->conns.slots[i], ECANCELED);
  for (size_t i = 0; i < st->sigs.cap; i++)
    if (st->sigs.slots[i]) signal_start_close(st, st->sigs.slots[i]);
  teardown_step(st);
}

static void free_state(napi_env env, void *data, void *hint) {
  addon_state *st = (addon_state *)data;
  free(st->socks.slots);
  free(st->conns.slots);
  free(st->sigs.slots);
  free(st);
}

#define EXPORT(name, fn)                                                                                           \
  do {                                                                                                             \
    napi_value f;                                                                                                  \
    NAPI_OK(napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &f));                                      \
    NAPI_OK(napi_set_named_property(env, exports, name, f));                                                       \
  } while (0)

NAPI_MODULE_INIT() {
  addon_state *st = calloc(1, sizeof *st);
  if (!st) return NULL;
  NAPI_OK(napi_set_instance_data(env, st, free_state, NULL));
  NAPI_OK(napi_add_async_cleanup_hook(env, cleanup, st, NULL));
  EXPORT("packetOpen", packet_open);
  EXPORT("packetSend", packet_send);
  EXPORT("packetSendBatch", packet_send_batch);
  EXPORT("packetMembership", packet_membership);
  EXPORT("packetStats", packet_stats);
  EXPORT("packetRef", packet_ref);
  EXPORT("packetTimestamps", packet_timestamps);
  EXPORT("packetSetFilter", packet_set_filter);
  EXPORT("packetClose", packet_close);
  EXPORT("tcpMd5Connect", tcp_md5_connect);
  EXPORT("tcpMd5Cancel", tcp_md5_cancel);
  EXPORT("tcpMd5SetKey", tcp_md5_set_key);
  EXPORT("bindToDevice", bind_to_device);
  EXPORT("bpf", bpf_syscall);
  EXPORT("setHopLimit", set_hop_limit_js);
  EXPORT("attachFilter", attach_filter);
  EXPORT("signalWatch", signal_watch_js);
  EXPORT("signalUnwatch", signal_unwatch_js);
  EXPORT("exitProcess", exit_process_js);
  napi_value v;
  napi_create_int32(env, 1, &v);
  napi_set_named_property(env, exports, "abiVersion", v);
  return exports;
}
