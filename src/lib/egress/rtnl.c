/* The three rtnetlink requests that `ip link set lo up`, `ip route add
 * default dev lo src 127.0.0.1` and `ip -6 route add default dev lo` send. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>

#include "core/util.h"
#include "egress/internal.h"

/* lo is always interface 1 (LOOPBACK_IFINDEX). */
#define LO_INDEX 1

struct nl_req {
    struct nlmsghdr nh;
    union {
        struct ifinfomsg ifi;
        struct rtmsg rt;
    } u;
    uint8_t attrs[64];
};

static void add_attr(struct nl_req *r, unsigned short type, const void *data, size_t len)
{
    struct rtattr *a = (struct rtattr *)((uint8_t *)r + NLMSG_ALIGN(r->nh.nlmsg_len));
    a->rta_type = type;
    a->rta_len = (unsigned short)RTA_LENGTH(len);
    memcpy(RTA_DATA(a), data, len);
    r->nh.nlmsg_len = NLMSG_ALIGN(r->nh.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

/* Sends one request and reads its acknowledgement. */
static int talk(int fd, struct nl_req *r, uint32_t seq, const char *what, struct cb_error *err)
{
    r->nh.nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
    r->nh.nlmsg_seq = seq;
    if (send(fd, r, r->nh.nlmsg_len, 0) < 0)
        return cb_error_set(err, -errno, "%s: send: %s", what, strerror(errno));
    union {
        struct nlmsghdr nh;
        uint8_t buf[1024];
    } ack;
    ssize_t n = recv(fd, &ack, sizeof(ack), 0);
    if (n < 0)
        return cb_error_set(err, -errno, "%s: recv: %s", what, strerror(errno));
    if (!NLMSG_OK(&ack.nh, (size_t)n) || ack.nh.nlmsg_type != NLMSG_ERROR ||
        ack.nh.nlmsg_seq != seq || ack.nh.nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
        return cb_error_set(err, -EPROTO, "%s: unexpected rtnetlink answer", what);
    const struct nlmsgerr *e = NLMSG_DATA(&ack.nh);
    if (e->error != 0)
        return cb_error_set(err, e->error, "%s: %s", what, strerror(-e->error));
    return 0;
}

static int lo_up(int fd, struct cb_error *err)
{
    struct nl_req r = {0};
    r.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
    r.nh.nlmsg_type = RTM_NEWLINK;
    r.u.ifi.ifi_family = AF_UNSPEC;
    r.u.ifi.ifi_index = LO_INDEX;
    r.u.ifi.ifi_flags = IFF_UP;
    r.u.ifi.ifi_change = IFF_UP;
    return talk(fd, &r, 1, "bringing lo up", err);
}

/* A default route through lo; src (4 bytes) only for IPv4. */
static int default_route(int fd, int family, const void *src, uint32_t seq, struct cb_error *err)
{
    struct nl_req r = {0};
    r.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
    r.nh.nlmsg_type = RTM_NEWROUTE;
    r.nh.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    r.u.rt.rtm_family = (unsigned char)family;
    r.u.rt.rtm_table = RT_TABLE_MAIN;
    r.u.rt.rtm_protocol = RTPROT_BOOT;
    r.u.rt.rtm_scope = RT_SCOPE_LINK;
    r.u.rt.rtm_type = RTN_UNICAST;
    int oif = LO_INDEX;
    add_attr(&r, RTA_OIF, &oif, sizeof(oif));
    if (src != NULL)
        add_attr(&r, RTA_PREFSRC, src, 4);
    return talk(fd, &r, seq,
                family == AF_INET ? "adding the IPv4 default route via lo"
                                  : "adding the IPv6 default route via lo",
                err);
}

int cb__egress_rtnl_setup(struct cb_error *err)
{
    _cleanup_close_ int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        return cb_error_set(err, -errno, "rtnetlink socket: %s", strerror(errno));
    struct in_addr src = {htonl(INADDR_LOOPBACK)};
    int rc = lo_up(fd, err);
    if (rc == 0)
        rc = default_route(fd, AF_INET, &src, 2, err);
    if (rc == 0)
        rc = default_route(fd, AF_INET6, NULL, 3, err);
    return rc;
}
