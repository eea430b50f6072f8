/*
 * Stand-in for the real service binaries, used only by deploy/tests/airgap-smoke.sh to test the
 * *packaging* (image assembly, scratch runtime, non-root user, healthchecks, compose ordering,
 * volumes, DNS) without waiting for a Rust release build. It mimics the binaries' CLI surface:
 *
 *   fake-service [serve]      HTTP/1.0 server on LISTEN_ADDR (default 0.0.0.0:8080); every path
 *                             answers 200 {"status":"ok"}; first writes DATA_DIR/fake-started to
 *                             prove the data dir is writable for the non-root user
 *   fake-service healthcheck  GET /healthz on 127.0.0.1:<port of LISTEN_ADDR>; exit 0 on 200
 *   fake-service resolve H..  getaddrinfo() each host; exit 2 if one fails (DNS in scratch)
 *   fake-service <other>      print and exit 0 (e.g. `demo-seed` for the compose seed job)
 *
 * Build: gcc -static -O2 -o fake-service fake-service.c
 */
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
    const char resp[] = "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n"
                        "Content-Length: 15\r\nConnection: close\r\n\r\n{\"status\":\"ok\"}";
    for (;;) {
        int c = accept(fd, NULL, NULL);
        if (c < 0) continue;
        char buf[2048];
        (void)read(c, buf, sizeof buf); /* one read is enough for these tiny requests */
        (void)write(c, resp, sizeof resp - 1);
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
