/* The lwIP module's glue: adapts lwIP's C callbacks (function pointers) to wasm imports
 * from the app (module "app", names morgana_lwip_*), and gives the app what it cannot
 * reach from AssemblyScript: macros (tcp_sndbuf), struct fields (pbuf payload, netif
 * address) and addresses passed by value (IPv4 addresses as u32 in network byte order).
 *
 * Contract: one thread. The app calls lwIP from one runtime task; the imported callbacks
 * run inside those calls and must only record what happened (settle futures), never call
 * back into lwIP, with one exception: the accept callback arms the new pcb
 * (morgana_lwip_tcp_arm, which only sets its callback fields), since data in the segment
 * that completed the handshake is delivered before the callback's caller returns.
 * `arg` is an opaque u32 the app chose; pointers are offsets into the one linear memory. */
#include "lwip/init.h"
#include "lwip/sys.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/tcp.h"
#include "lwip/udp.h"
#include "lwip/dhcp.h"
#include "lwip/etharp.h"
#include "netif/ethernet.h"
#include "lwip/timeouts.h"
#include "lwip/priv/memp_priv.h"

#define IMPORT(name) __attribute__((import_module("app"), import_name("morgana_lwip_" #name)))
#define EXPORT(name) __attribute__((export_name("morgana_lwip_" #name)))

/* Clock and randomness come from the ABI through the app. */
IMPORT(now) u32_t app_now(void);    /* milliseconds, monotonic (wraps) */
IMPORT(rand) u32_t app_rand(void);  /* 32 random bits (entropy_fill) */
/* A frame to transmit: the app copies p's chain (pbuf_copy_partial) before returning. */
IMPORT(linkoutput) err_t app_linkoutput(struct netif *netif, struct pbuf *p);
/* The interface's address or up/down state changed (a DHCP lease, for instance). */
IMPORT(netif_status) void app_netif_status(struct netif *netif);
IMPORT(tcp_accept) err_t app_tcp_accept(u32_t arg, struct tcp_pcb *newpcb, err_t err);
IMPORT(tcp_connected) err_t app_tcp_connected(u32_t arg, struct tcp_pcb *pcb, err_t err);
/* p == 0: the peer closed its side. Returning ERR_OK means the app owns p. */
IMPORT(tcp_recv) err_t app_tcp_recv(u32_t arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err);
IMPORT(tcp_sent) err_t app_tcp_sent(u32_t arg, struct tcp_pcb *pcb, u32_t len);
/* The pcb is already freed when this is called (reset, abort, out of memory). */
IMPORT(tcp_err) void app_tcp_err(u32_t arg, err_t err);
IMPORT(udp_recv) void app_udp_recv(u32_t arg, struct udp_pcb *pcb, struct pbuf *p, u32_t ip, u32_t port);

u32_t sys_now(void) { return app_now(); }
unsigned int morgana_lwip_rand(void) { return app_rand(); }

/* --- Interface ------------------------------------------------------------------- */

static err_t link_output(struct netif *netif, struct pbuf *p) { return app_linkoutput(netif, p); }
static void status_changed(struct netif *netif) { app_netif_status(netif); }

static err_t netif_setup(struct netif *netif)
{
    netif->name[0] = 'e';
    netif->name[1] = 't';
    netif->output = etharp_output;
    netif->linkoutput = link_output;
    netif->hwaddr_len = ETH_HWADDR_LEN;
    netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET;
    return ERR_OK;
}

/* Adds an Ethernet interface (netif storage from the app, sizeof from netif_size): MAC,
 * MTU and a static address (0 for none, e.g. before DHCP). It becomes the default route. */
EXPORT(netif_add) struct netif *add(struct netif *netif, const u8_t *mac, u32_t mtu, u32_t ip, u32_t mask, u32_t gw)
{
    ip4_addr_t a, m, g;
    a.addr = ip;
    m.addr = mask;
    g.addr = gw;
    if (!netif_add(netif, &a, &m, &g, 0, netif_setup, ethernet_input)) return 0;
    for (int i = 0; i < ETH_HWADDR_LEN; i++) netif->hwaddr[i] = mac[i];
    netif->mtu = (u16_t)mtu;
    netif_set_status_callback(netif, status_changed);
    netif_set_default(netif);
    return netif;
}
EXPORT(netif_size) u32_t netif_size(void) { return sizeof(struct netif); }
EXPORT(netif_ip4) u32_t netif_ip(struct netif *n) { return ip4_addr_get_u32(netif_ip4_addr(n)); }
EXPORT(netif_mask4) u32_t netif_mask(struct netif *n) { return ip4_addr_get_u32(netif_ip4_netmask(n)); }
EXPORT(netif_gw4) u32_t netif_gw(struct netif *n) { return ip4_addr_get_u32(netif_ip4_gw(n)); }
/* Received frame: p belongs to lwIP afterwards, whatever the result. */
EXPORT(input) err_t input(struct pbuf *p, struct netif *n) { return n->input(p, n); }

/* --- pbufs ------------------------------------------------------------------------ */

EXPORT(pbuf_payload) void *pbuf_payload(struct pbuf *p) { return p->payload; }
EXPORT(pbuf_len) u32_t pbuf_len(struct pbuf *p) { return p->len; }
EXPORT(pbuf_tot_len) u32_t pbuf_tot_len(struct pbuf *p) { return p->tot_len; }
EXPORT(pbuf_next) struct pbuf *pbuf_next(struct pbuf *p) { return p->next; }

/* --- TCP ------------------------------------------------------------------------- */

static err_t on_accept(void *arg, struct tcp_pcb *newpcb, err_t err) { return app_tcp_accept((u32_t)arg, newpcb, err); }
static err_t on_connected(void *arg, struct tcp_pcb *pcb, err_t err) { return app_tcp_connected((u32_t)arg, pcb, err); }
static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err) { return app_tcp_recv((u32_t)arg, pcb, p, err); }
static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len) { return app_tcp_sent((u32_t)arg, pcb, len); }
static void on_err(void *arg, err_t err) { app_tcp_err((u32_t)arg, err); }

/* Routes a connection's events to the app under `arg`. */
EXPORT(tcp_arm) void tcp_arm(struct tcp_pcb *pcb, u32_t arg)
{
    tcp_arg(pcb, (void *)arg);
    tcp_recv(pcb, on_recv);
    tcp_sent(pcb, on_sent);
    tcp_err(pcb, on_err);
}
/* Routes a listener's new connections to the app under `arg`. */
EXPORT(tcp_arm_listen) void tcp_arm_listen(struct tcp_pcb *pcb, u32_t arg)
{
    tcp_arg(pcb, (void *)arg);
    tcp_accept(pcb, on_accept);
}
/* Stops a connection's events (before tcp_close or tcp_abort): no callback reaches the app
 * under its arg again; data that still arrives goes to lwIP's own tcp_recv_null. */
EXPORT(tcp_disarm) void tcp_disarm(struct tcp_pcb *pcb)
{
    tcp_arg(pcb, 0);
    tcp_recv(pcb, 0);
    tcp_sent(pcb, 0);
    tcp_err(pcb, 0);
}
EXPORT(tcp_bind4) err_t tcp_bind4(struct tcp_pcb *pcb, u32_t ip, u32_t port)
{
    ip_addr_t a = IPADDR4_INIT(ip);
    return tcp_bind(pcb, &a, (u16_t)port);
}
/* Connects; the pcb must be armed (tcp_arm) first so errors reach the app. */
EXPORT(tcp_connect4) err_t tcp_connect4(struct tcp_pcb *pcb, u32_t ip, u32_t port)
{
    ip_addr_t a = IPADDR4_INIT(ip);
    return tcp_connect(pcb, &a, (u16_t)port, on_connected);
}
EXPORT(tcp_sndbuf) u32_t tcp_sndbuf_of(struct tcp_pcb *pcb) { return tcp_sndbuf(pcb); }
EXPORT(tcp_sndqueuelen) u32_t tcp_sndqueuelen_of(struct tcp_pcb *pcb) { return tcp_sndqueuelen(pcb); }
EXPORT(tcp_nodelay) void tcp_nodelay(struct tcp_pcb *pcb, u32_t on)
{
    if (on) tcp_nagle_disable(pcb); else tcp_nagle_enable(pcb);
}
EXPORT(tcp_remote_ip4) u32_t tcp_remote_ip(struct tcp_pcb *pcb) { return ip4_addr_get_u32(ip_2_ip4(&pcb->remote_ip)); }
EXPORT(tcp_remote_port) u32_t tcp_remote_port(struct tcp_pcb *pcb) { return pcb->remote_port; }
EXPORT(tcp_local_port) u32_t tcp_local_port(struct tcp_pcb *pcb) { return pcb->local_port; }

/* --- UDP ------------------------------------------------------------------------- */

static void on_udp(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr, u16_t port)
{
    app_udp_recv((u32_t)arg, pcb, p, ip4_addr_get_u32(ip_2_ip4(addr)), port);
}
EXPORT(udp_arm) void udp_arm(struct udp_pcb *pcb, u32_t arg) { udp_recv(pcb, on_udp, (void *)arg); }
EXPORT(udp_bind4) err_t udp_bind4(struct udp_pcb *pcb, u32_t ip, u32_t port)
{
    ip_addr_t a = IPADDR4_INIT(ip);
    return udp_bind(pcb, &a, (u16_t)port);
}
EXPORT(udp_sendto4) err_t udp_sendto4(struct udp_pcb *pcb, struct pbuf *p, u32_t ip, u32_t port)
{
    ip_addr_t a = IPADDR4_INIT(ip);
    return udp_sendto(pcb, p, &a, (u16_t)port);
}

/* --- Timers and counters ------------------------------------------------------------ */

/* Milliseconds until sys_check_timeouts has work, 0xffffffff for none. */
EXPORT(timeouts_sleeptime) u32_t timeouts_sleeptime(void) { return sys_timeouts_sleeptime(); }
/* Whether DHCP has bound an address to the interface. */
EXPORT(dhcp_bound) u32_t dhcp_bound(struct netif *n) { return dhcp_supplied_address(n); }

/* Elements in use in one of lwIP's static pools (leak tests; LWIP_STATS is off): the pool's
 * size less the length of its free list. which: 0 PBUF_POOL, 1 TCP_PCB, 2 TCP_PCB_LISTEN,
 * 3 UDP_PCB, 4 TCP_SEG, 5 PBUF (ref/rom headers), 6 ARP_QUEUE; any other: 0xffffffff. */
EXPORT(pool_used) u32_t pool_used(u32_t which)
{
    static const memp_t pools[] = {MEMP_PBUF_POOL, MEMP_TCP_PCB, MEMP_TCP_PCB_LISTEN, MEMP_UDP_PCB, MEMP_TCP_SEG, MEMP_PBUF, MEMP_ARP_QUEUE};
    if (which >= sizeof pools / sizeof pools[0]) return 0xffffffffu;
    const struct memp_desc *d = memp_pools[pools[which]];
    u32_t free = 0;
    for (struct memp *m = *d->tab; m; m = m->next) free++;
    return d->num - free;
}

/* --- libc beyond sqlite/libc.c ----------------------------------------------------- */

/* netif_find ("et0") parses the interface number with atoi (netif.c). */
int atoi(const char *s)
{
    int n = 0, neg = *s == '-';
    if (*s == '-' || *s == '+') s++;
    while (*s >= '0' && *s <= '9') n = n * 10 + (*s++ - '0');
    return neg ? -n : n;
}
