/*
 * Stand-in for the real service binaries, used only by deploy/tests/airgap-smoke.sh to test the
 * *packaging* (image assembly, scratch runtime, non-root user, healthchecks, compose ordering,
 * volumes, DNS) without waiting for a Rust release build. It mimics the binaries' CLI surface:
 *
 *   fake-service [serve]      HTTP/1.0 server on LISTEN_ADDR (default 0.0.0.0:8080); first writes
 *                             DATA_DIR/fake-started to prove the data dir is writable for the
 *                             non-root user. A crude stub of the contract, enough to run the flow
 *                             of compose-e2e.sh: POST /v1/users 201, POST /v1/auth/login 200 with
 *                             a fixed token (401 if the body contains "wrong"), /v1/users/me and
 *                             /v1/orders 401 without that token; everything else 200. It proves
 *                             nothing about the services, only that the scripts work.
 *   fake-service healthcheck  GET /healthz on 127.0.0.1:<port of LISTEN_ADDR>; exit 0 on 200
 *   fake-service resolve H..  getaddrinfo() each host; exit 2 if one fails (DNS in scratch)
 *   fake-service <other>      print and exit 0 (e.g. `demo-seed` for the compose seed job)
 *
 * Build: gcc -static -O2 -o fake-service fake-service.c
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int listen_port(void) {
    const char *addr = getenv("LISTEN_ADDR");
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    return colon ? atoi(colon + 1) : 8080;
}

static int healthcheck(void) {
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)listen_port());
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("healthcheck: connect");
        return 1;
    }
    const char req[] = "GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if (write(fd, req, sizeof req - 1) < 0) return 1;
    char buf[64] = {0};
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return (n > 12 && strncmp(buf, "HTTP/1.", 7) == 0 && strncmp(buf + 9, "200", 3) == 0) ? 0 : 1;
}

static int resolve(int argc, char **argv) {
    int rc = 0;
    for (int i = 2; i < argc; i++) {
        struct addrinfo hints = {0}, *res;
        hints.ai_family = AF_INET;
        int e = getaddrinfo(argv[i], NULL, &hints, &res);
        if (e != 0) {
            printf("%s: FAIL %s\n", argv[i], gai_strerror(e));
            rc = 2;
            continue;
        }
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, ip, sizeof ip);
        printf("%s: %s\n", argv[i], ip);
        freeaddrinfo(res);
    }
    return rc;
}

#define FAKE_TOKEN "fake.token.sig"
static char last_user[512] = "{}";

static void reply(int c, int status, const char *body) {
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.0 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n", status, strlen(body));
    (void)write(c, head, (size_t)n);
    (void)write(c, body, strlen(body));
}

static void handle(int c) {
    char req[4096] = {0};
    ssize_t got = 0, n;
    /* Read headers, then the body if Content-Length says there is one (curl/urllib may split). */
    while (got < (ssize_t)sizeof req - 1 && (n = read(c, req + got, sizeof req - 1 - got)) > 0) {
        got += n;
        char *end = strstr(req, "\r\n\r\n");
        if (!end) continue;
        char *cl = strcasestr(req, "Content-Length:");
        if (!cl || cl > end || (end + 4 - req) + atoi(cl + 15) <= got) break;
    }
    char *body = strstr(req, "\r\n\r\n");
    body = body ? body + 4 : req + got;
    int authed = strstr(req, "Bearer " FAKE_TOKEN) != NULL;
    if (strncmp(req, "POST /v1/users ", 15) == 0) {
        snprintf(last_user, sizeof last_user, "%s", body);
        reply(c, 201, last_user);
    } else if (strncmp(req, "POST /v1/auth/login ", 20) == 0) {
        if (strstr(body, "wrong")) reply(c, 401, "{\"error\":\"invalid_grant\"}");
        else reply(c, 200, "{\"access_token\":\"" FAKE_TOKEN "\",\"token_type\":\"Bearer\"}");
    } else if (strncmp(req, "GET /v1/users/me ", 17) == 0) {
        reply(c, authed ? 200 : 401, authed ? last_user : "{}");
    } else if (strncmp(req, "POST /v1/orders ", 16) == 0) {
        reply(c, authed ? 201 : 401, "{\"id\":\"order-1\"}");
    } else if (strncmp(req, "GET /v1/orders ", 15) == 0) {
        reply(c, authed ? 200 : 401, "[{\"id\":\"order-1\"}]");
    } else {
        reply(c, 200, "{\"status\":\"ok\"}");
    }
}

static void on_term(int sig) { (void)sig; _exit(0); }

static int serve(void) {
    const char *dir = getenv("DATA_DIR");
    char path[512];
    snprintf(path, sizeof path, "%s/fake-started", dir ? dir : ".");
    FILE *f = fopen(path, "w");
    if (!f) {
        perror("serve: DATA_DIR not writable");
        return 1;
    }
    fprintf(f, "uid=%d\n", (int)getuid());
    fclose(f);

    signal(SIGPIPE, SIG_IGN);
    /* PID 1 in a container ignores SIGTERM unless it installs a handler: exit at once, as the
     * real binaries must (graceful shutdown), so `docker stop` does not wait 10 s for SIGKILL. */
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)listen_port());
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 64) != 0) {
        perror("serve: bind/listen");
        return 1;
    }
    printf("{\"msg\":\"fake service listening\",\"port\":%d}\n", listen_port());
    fflush(stdout);
    for (;;) {
        int c = accept(fd, NULL, NULL);
        if (c < 0) continue;
        handle(c);
        close(c);
    }
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "serve") == 0) return serve();
    if (strcmp(argv[1], "healthcheck") == 0) return healthcheck();
    if (strcmp(argv[1], "resolve") == 0) return resolve(argc, argv);
    printf("fake-service: '%s' done\n", argv[1]);
    return 0;
}
