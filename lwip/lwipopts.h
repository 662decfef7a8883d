/* lwIP 2.1.3 options for Morgana (lwIP's src/include/lwip/opt.h lists every option and
 * its default). One thread, no OS: the raw API, driven by one runtime task that calls
 * ethernet_input for received frames and sys_check_timeouts; lwIP's callbacks only
 * forward to the app (lwip/glue.c). Everything lwIP allocates comes from static pools. */
#ifndef MORGANA_LWIPOPTS_H
#define MORGANA_LWIPOPTS_H

/* --- System: no OS, no threads, no locks ---------------------------------------- */
#define NO_SYS 1                  /* raw API only: no tcpip thread, no mailboxes */
#define SYS_LIGHTWEIGHT_PROT 0    /* one thread: nothing to protect */
#define LWIP_NETCONN 0            /* no sequential API */
#define LWIP_SOCKET 0             /* no BSD sockets */
#define LWIP_NOASSERT 1           /* no printf/abort to report them with (arch/cc.h) */
#define LWIP_TIMERS 1             /* sys_check_timeouts drives TCP, ARP, DHCP timers */

/* --- Memory: static pools, no malloc -------------------------------------------- */
#define MEM_LIBC_MALLOC 0         /* lwIP's own heap (mem.c) on a static array */
#define MEMP_MEM_MALLOC 0         /* pools are static arrays, sized below */
#define MEM_ALIGNMENT 4
#define MEM_SIZE (512 * 1024)     /* lwIP's heap: PBUF_RAM (outgoing segments, copies) */
#define MEMP_NUM_PBUF 64          /* PBUF_REF/ROM headers */
#define MEMP_NUM_UDP_PCB 8
#define MEMP_NUM_TCP_PCB 64       /* established connections at once */
#define MEMP_NUM_TCP_PCB_LISTEN 8
#define MEMP_NUM_TCP_SEG 512      /* queued segments, all connections: >= TCP_SND_QUEUELEN */
#define MEMP_NUM_REASSDATA 4
#define MEMP_NUM_ARP_QUEUE 16
#define MEMP_NUM_SYS_TIMEOUT (LWIP_NUM_SYS_TIMEOUT_INTERNAL + 2)
#define PBUF_POOL_SIZE 256        /* received frames waiting in lwIP (incl. out-of-order) */
#define PBUF_POOL_BUFSIZE 1536    /* one Ethernet frame per pool pbuf */

/* --- Protocols ------------------------------------------------------------------ */
#define LWIP_IPV4 1
#define LWIP_IPV6 0
#define LWIP_ARP 1                /* etharp */
#define LWIP_ETHERNET 1
#define ETHARP_SUPPORT_STATIC_ENTRIES 0
#define ARP_QUEUEING 1            /* queue packets while their ARP request is out */
#define LWIP_ICMP 1               /* echo replies */
#define LWIP_RAW 0
#define LWIP_UDP 1
#define LWIP_TCP 1
#define LWIP_DHCP 1
#define LWIP_AUTOIP 0
#define LWIP_IGMP 0
#define LWIP_DNS 0
#define IP_REASSEMBLY 1
#define IP_FRAG 1
#define LWIP_NETIF_STATUS_CALLBACK 1  /* DHCP lease / address change -> the app */
#define LWIP_NETIF_LINK_CALLBACK 0
#define LWIP_SINGLE_NETIF 0
#define LWIP_NETIF_HWADDRHINT 0

/* --- TCP: window scaling, timestamps, SACK (RFC 7323, RFC 2018) --------------------- */
#define TCP_MSS 1460              /* Ethernet MTU 1500 less IPv4 and TCP headers */
#define LWIP_WND_SCALE 1
#define TCP_RCV_SCALE 2           /* our window is advertised in units of 4 bytes */
#define TCP_WND (128 * 1024)      /* receive window per connection */
#define TCP_SND_BUF (64 * 1024)   /* send buffer per connection */
#define TCP_SND_QUEUELEN ((4 * TCP_SND_BUF + TCP_MSS - 1) / TCP_MSS)
#define TCP_QUEUE_OOSEQ 1         /* keep out-of-order segments (needed for SACK) */
#define LWIP_TCP_SACK_OUT 1       /* tell the peer which out-of-order blocks we hold */
#define LWIP_TCP_MAX_SACK_NUM 4
#define LWIP_TCP_TIMESTAMPS 1
#define TCP_LISTEN_BACKLOG 1      /* tcp_listen_with_backlog honours its argument */
#define LWIP_TCP_KEEPALIVE 1
#define TCP_OVERSIZE TCP_MSS

/* --- Checksums: computed and checked by lwIP in software ------------------------- */
#define LWIP_CHECKSUM_CTRL_PER_NETIF 1  /* netfront may turn checks off for validated frames */

/* --- No statistics, no debug output ----------------------------------------------- */
#define LWIP_STATS 0
#define LWIP_STATS_DISPLAY 0
#define LWIP_PERF 0

#endif
