#!/usr/bin/env bash
# Air-gapped image build: every image the stack needs, without pulling from any container registry.
#
# Why this exists: CI machines (and some production sites) reach the Debian package mirror but no
# container registry, so `FROM rust`, `FROM distroless` and `image: postgres:15` cannot work there.
# Users on the internet use deploy/Dockerfile + deploy/docker-compose.yml; this script produces
# drop-in local replacements that deploy/docker-compose.airgap.yml points compose at.
#
# Steps (each can be selected with --only):
#   base      debootstrap --variant=minbase <suite> from the Debian mirror this host's apt uses,
#             imported with `docker import` as ${IMAGE_PREFIX}/debian-base:<suite>.
#             The rootfs tarball is cached in ${AIRGAP_CACHE}; reruns only re-import if needed.
#   postgres  postgresql-<PG_MAJOR> installed into a copy of that rootfs with chroot apt-get,
#             imported as ${IMAGE_PREFIX}/postgres-rootfs:<PG_MAJOR>, then deploy/airgap/postgres/
#             Dockerfile adds an entrypoint compatible with the official image
#             -> ${IMAGE_PREFIX}/postgres:<PG_MAJOR>.
#   services  auth-server, users-service, orders-service and demo-web (the demo web app) from
#             binaries built on the host, copied into `FROM scratch` images (or the debian base if
#             a binary is not static) -> ${IMAGE_PREFIX}/<service>:${IMAGE_TAG}.
#
# Usage:
#   deploy/airgap/build-images.sh [--only base,postgres,services] [--bin-dir DIR] [--tag TAG]
#                                 [--rebuild]
#   Without --bin-dir (or BIN_DIR) the binaries are built first with a static glibc:
#     RUSTFLAGS="-C target-feature=+crt-static" cargo build --release \
#       --target x86_64-unknown-linux-gnu -p auth-server -p users-service -p orders-service \
#       -p demo-web
#   (--target is what keeps crt-static away from proc-macros and build scripts.)
#
# Environment (all optional):
#   AIRGAP_CACHE    cache dir for rootfs tarballs   (default /var/cache/jwt-platform-airgap)
#   DEBIAN_SUITE    Debian release                  (default bookworm)
#   DEBIAN_MIRROR   override the mirror URI; by default it is read from /etc/apt/sources.list
#                   and /etc/apt/sources.list.d/*.{list,sources} at run time (never hard-coded)
#   PG_MAJOR        PostgreSQL major version        (default 15, the one bookworm ships)
#   IMAGE_PREFIX    image name prefix               (default jwt-platform)
#   IMAGE_TAG       tag of the service images       (default local)
#   BIN_DIR         directory holding the four prebuilt binaries
#
# Needs root (debootstrap, chroot, mount), docker, tar, sha256sum, readelf and strip (binutils).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/../.." && pwd)"

AIRGAP_CACHE="${AIRGAP_CACHE:-/var/cache/jwt-platform-airgap}"
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
PG_MAJOR="${PG_MAJOR:-15}"
IMAGE_PREFIX="${IMAGE_PREFIX:-jwt-platform}"
IMAGE_TAG="${IMAGE_TAG:-local}"
BIN_DIR="${BIN_DIR:-}"
ONLY="base,postgres,services"
REBUILD=0
SERVICES=(auth-server users-service orders-service demo-web)

# Bump when the chroot install recipe below changes, so cached postgres rootfs images are rebuilt.
PG_RECIPE_VERSION=3

log() { printf '[airgap %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }

# The command line as given: the loop below shifts it away, and the re-run under sudo
# (ensure_root) needs all of it.
ORIGINAL_ARGS=("$@")

while [ $# -gt 0 ]; do
    case "$1" in
        --only) ONLY="$2"; shift 2 ;;
        --only=*) ONLY="${1#*=}"; shift ;;
        --bin-dir) BIN_DIR="$2"; shift 2 ;;
        --bin-dir=*) BIN_DIR="${1#*=}"; shift ;;
        --tag) IMAGE_TAG="$2"; shift 2 ;;
        --tag=*) IMAGE_TAG="${1#*=}"; shift ;;
        --rebuild) REBUILD=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done

want() { case ",${ONLY}," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

BASE_IMAGE="${IMAGE_PREFIX}/debian-base:${DEBIAN_SUITE}"
PG_ROOTFS_IMAGE="${IMAGE_PREFIX}/postgres-rootfs:${PG_MAJOR}"
PG_IMAGE="${IMAGE_PREFIX}/postgres:${PG_MAJOR}"
ROOTFS_TAR="${AIRGAP_CACHE}/debian-${DEBIAN_SUITE}-minbase.tar"

command -v docker >/dev/null || die "docker not found"
docker info >/dev/null 2>&1 || die "the docker daemon is not reachable"

# --- Debian mirror discovery ---------------------------------------------------------------------
# Prints "URI SUITE" for every enabled `deb` entry of the suite family (bookworm, bookworm-updates,
# bookworm-security), one-line format first, then deb822 (.sources). Files apt itself ignores
# (other extensions, e.g. *.disabled) are ignored here too.
debian_sources() {
    local suite="$1" f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        awk -v fam="$suite" '
            /^[[:space:]]*(#|$)/ { next }
            $1 == "deb" {
                i = 2
                if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }   # skip [options]
                if ($(i+1) == fam || index($(i+1), fam "-") == 1) print $i, $(i+1)
            }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        # deb822: stanzas separated by blank lines; continuation lines start with white space.
        awk -v fam="$suite" '
            function flush(   n, u, s, i, j) {
                if (types ~ /(^| )deb( |$)/ && enabled != "no") {
                    n = split(uris, u, " "); m = split(suites, s, " ")
                    for (j = 1; j <= m; j++)
                        if (s[j] == fam || index(s[j], fam "-") == 1)
                            for (i = 1; i <= n; i++) print u[i], s[j]
                }
                types = uris = suites = ""; enabled = "yes"
            }
            BEGIN { enabled = "yes" }
            /^[[:space:]]*#/ { next }
            /^[[:space:]]*$/ { flush(); next }
            /^[^[:space:]]/ {
                key = tolower($1); sub(/:$/, "", key); $1 = ""; val = $0
                gsub(/^[[:space:]]+|[[:space:]]+$/, "", val)
                if (key == "types") types = val
                else if (key == "uris") uris = val
                else if (key == "suites") suites = val
                else if (key == "enabled") enabled = tolower(val)
            }
            END { flush() }' "$f"
    done
}

debian_mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "${DEBIAN_MIRROR}"; return; fi
    debian_sources "${DEBIAN_SUITE}" | awk -v s="${DEBIAN_SUITE}" '$2 == s { print $1; exit }'
}

# --- helpers -------------------------------------------------------------------------------------
image_label() { # image label -> value ("" if the image or label is missing)
    docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

# docker build, quiet unless it fails (the CLI's "legacy builder" notice is noise here).
docker_build() {
    local out
    out="$(mktemp)"
    if ! docker build "$@" >"$out" 2>&1; then
        cat "$out" >&2; rm -f "$out"; die "docker build $* failed"
    fi
    rm -f "$out"
}

image_id() { docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }

# After a tag moved to a new image, drop the old one if nothing else uses it (best effort), so
# rebuilds on CI machines do not pile up hundreds of MB of dangling images.
retire_image() { # old-id new-ref
    local new
    new="$(image_id "$2")"
    if [ -n "$1" ] && [ "$1" != "$new" ]; then docker rmi "$1" >/dev/null 2>&1 || true; fi
}

image_size_mb() {
    docker image inspect --format '{{.Size}}' "$1" | awk '{ printf "%.1f MB", $1 / 1000000 }'
}

ensure_root() {
    [ "$(id -u)" -eq 0 ] && return 0
    if command -v sudo >/dev/null; then
        log "re-running as root via sudo (debootstrap and chroot need it)"
        exec sudo -E "$0" "$@"
    fi
    die "must run as root (debootstrap, chroot and mount need it)"
}

ensure_pkg() { # command package
    command -v "$1" >/dev/null && return 0
    log "installing $2 with apt-get (needed for $1)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }
}

# Everything created below is removed on exit, also on failure (mounts first).
CLEANUP_MOUNTS=()
CLEANUP_DIRS=()
cleanup() {
    local m d
    for m in "${CLEANUP_MOUNTS[@]+"${CLEANUP_MOUNTS[@]}"}"; do umount -l "$m" 2>/dev/null || true; done
    for d in "${CLEANUP_DIRS[@]+"${CLEANUP_DIRS[@]}"}"; do rm -rf --one-file-system "$d"; done
}
trap cleanup EXIT

# --- step a: Debian base -------------------------------------------------------------------------
build_rootfs_tar() {
    ensure_pkg debootstrap debootstrap
    local mirror keyring=() work t0
    mirror="$(debian_mirror)"
    [ -n "$mirror" ] || die "no '${DEBIAN_SUITE}' entry in /etc/apt/sources.list(.d); set DEBIAN_MIRROR"
    [ -r /usr/share/keyrings/debian-archive-keyring.gpg ] \
        && keyring=(--keyring=/usr/share/keyrings/debian-archive-keyring.gpg)
    work="$(mktemp -d "${AIRGAP_CACHE}/rootfs.XXXXXX")"
    CLEANUP_DIRS+=("$work")
    log "debootstrap --variant=minbase ${DEBIAN_SUITE} (mirror from the host's apt sources)"
    t0=$(date +%s)
    if ! debootstrap --variant=minbase "${keyring[@]}" "${DEBIAN_SUITE}" "$work/root" "$mirror" \
        >"$work/debootstrap.out" 2>&1; then
        tail -n 30 "$work/debootstrap.out" >&2
        [ -f "$work/root/debootstrap/debootstrap.log" ] && tail -n 30 "$work/root/debootstrap/debootstrap.log" >&2
        die "debootstrap failed"
    fi
    log "debootstrap took $(( $(date +%s) - t0 ))s"

    # Slim the rootfs the way the official debian:*-slim images do: no docs, man pages or
    # translations now, and none installed later either (dpkg path-exclude), no apt lists/caches.
    mkdir -p "$work/root/etc/dpkg/dpkg.cfg.d"
    cat >"$work/root/etc/dpkg/dpkg.cfg.d/90-airgap-slim" <<'EOF'
# Written by deploy/airgap/build-images.sh: keep container images small.
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-exclude=/usr/share/lintian/*
EOF
    find "$work/root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
    rm -rf "$work/root/usr/share/man/"* "$work/root/usr/share/info/"* "$work/root/usr/share/locale/"* \
        "$work/root/var/cache/apt/"*.bin "$work/root/var/cache/apt/archives/"*.deb \
        "$work/root/var/lib/apt/lists/"* "$work/root/var/log/"*.log "$work/root/debootstrap"
    # Containers get resolv.conf/hosts/hostname from docker; do not bake the build host's in.
    : >"$work/root/etc/resolv.conf"
    : >"$work/root/etc/hostname"

    tar -C "$work/root" --numeric-owner --xattrs -cf "${ROOTFS_TAR}.tmp" .
    mv "${ROOTFS_TAR}.tmp" "${ROOTFS_TAR}"
    rm -rf --one-file-system "$work"
}

step_base() {
    local old_id
    if [ "$REBUILD" = 1 ] || [ ! -s "$ROOTFS_TAR" ]; then
        build_rootfs_tar
    else
        log "reusing cached rootfs ${ROOTFS_TAR}"
    fi
    ROOTFS_SHA="$(sha256sum "$ROOTFS_TAR" | cut -c1-64)"
    if [ "$REBUILD" = 0 ] && [ "$(image_label "$BASE_IMAGE" org.jwt-platform.rootfs-sha256)" = "$ROOTFS_SHA" ]; then
        log "${BASE_IMAGE} is up to date"
    else
        log "docker import -> ${BASE_IMAGE}"
        old_id="$(image_id "$BASE_IMAGE")"
        docker import \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV LANG=C.UTF-8' \
            --change 'CMD ["bash"]' \
            --change "LABEL org.jwt-platform.rootfs-sha256=${ROOTFS_SHA}" \
            --change "LABEL org.opencontainers.image.description=\"debootstrap minbase ${DEBIAN_SUITE}\"" \
            --message "debootstrap --variant=minbase ${DEBIAN_SUITE}" \
            "$ROOTFS_TAR" "$BASE_IMAGE" >/dev/null
        retire_image "$old_id" "$BASE_IMAGE"
    fi
    log "${BASE_IMAGE}: $(image_size_mb "$BASE_IMAGE")"
}

# --- step b: PostgreSQL --------------------------------------------------------------------------
build_pg_rootfs() {
    local work root t0
    work="$(mktemp -d "${AIRGAP_CACHE}/pg.XXXXXX")"
    CLEANUP_DIRS+=("$work")
    root="$work/root"
    mkdir "$root"
    tar -C "$root" --numeric-owner --xattrs -xpf "$ROOTFS_TAR"

    # Same Debian sources as the host uses for this suite family (release, updates, security), so
    # the image gets the same security fixes as the host's own postgresql packages.
    debian_sources "${DEBIAN_SUITE}" | awk '{ print "deb", $1, $2, "main" }' | sort -u >"$work/sources.list"
    [ -s "$work/sources.list" ] || echo "deb $(debian_mirror) ${DEBIAN_SUITE} main" >"$work/sources.list"
    cp "$work/sources.list" "$root/etc/apt/sources.list"
    rm -f "$root/etc/apt/sources.list.d/"*
    # Name resolution inside the chroot as on the host (mirror may be named in /etc/hosts).
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    cp /etc/hosts "$root/etc/hosts"
    # Debian policy: maintainer scripts ask policy-rc.d before starting services; 101 = "no".
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 755 "$root/usr/sbin/policy-rc.d"
    # Some maintainer scripts read /proc; a failed mount is tolerated (they mostly cope).
    if mount -t proc proc "$root/proc" 2>/dev/null; then CLEANUP_MOUNTS+=("$root/proc"); fi

    log "chroot apt-get install postgresql-${PG_MAJOR}"
    t0=$(date +%s)
    chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        LANG=C.UTF-8 sh -ec "
            apt-get update -qq
            apt-get install -y -qq --no-install-recommends postgresql-${PG_MAJOR} >/dev/null
            # The package creates a 'main' cluster; the entrypoint makes its own under PGDATA.
            pg_dropcluster ${PG_MAJOR} main 2>/dev/null || true
            rm -rf /var/lib/postgresql/${PG_MAJOR}/main /etc/postgresql/${PG_MAJOR}/main
            apt-get clean
        " >"$work/apt.out" 2>&1 || { tail -n 40 "$work/apt.out" >&2; die "chroot apt-get failed"; }
    log "chroot install took $(( $(date +%s) - t0 ))s"
    if mountpoint -q "$root/proc"; then umount "$root/proc"; fi

    rm -f "$root/usr/sbin/policy-rc.d"
    : >"$root/etc/resolv.conf"
    cp "$ROOT_HOSTS_BACKUP" "$root/etc/hosts"
    # Drop the host's sources again: the image must not carry this site's mirror around.
    rm -f "$root/etc/apt/sources.list"
    rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin "$root/var/log/"*.log \
        "$root/var/log/apt/"* "$root/var/cache/debconf/"*-old

    log "docker import -> ${PG_ROOTFS_IMAGE}"
    PG_ROOTFS_OLD_ID="$(image_id "$PG_ROOTFS_IMAGE")"
    tar -C "$root" --numeric-owner --xattrs -c . | docker import \
        --change "LABEL org.jwt-platform.rootfs-sha256=${ROOTFS_SHA}" \
        --change "LABEL org.jwt-platform.pg-recipe=${PG_RECIPE_VERSION}" \
        --message "postgresql-${PG_MAJOR} on debootstrap ${DEBIAN_SUITE}" \
        - "$PG_ROOTFS_IMAGE" >/dev/null
    rm -rf --one-file-system "$work"
}

step_postgres() {
    [ -s "$ROOTFS_TAR" ] || die "no cached rootfs at ${ROOTFS_TAR}: run the 'base' step first"
    ROOTFS_SHA="${ROOTFS_SHA:-$(sha256sum "$ROOTFS_TAR" | cut -c1-64)}"
    # /etc/hosts as debootstrap left it (inside the tarball), restored after the chroot install.
    ROOT_HOSTS_BACKUP="$(mktemp)"
    CLEANUP_DIRS+=("$ROOT_HOSTS_BACKUP")
    tar -xOf "$ROOTFS_TAR" ./etc/hosts >"$ROOT_HOSTS_BACKUP" 2>/dev/null \
        || printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT_HOSTS_BACKUP"

    if [ "$REBUILD" = 0 ] \
        && [ "$(image_label "$PG_ROOTFS_IMAGE" org.jwt-platform.rootfs-sha256)" = "$ROOTFS_SHA" ] \
        && [ "$(image_label "$PG_ROOTFS_IMAGE" org.jwt-platform.pg-recipe)" = "$PG_RECIPE_VERSION" ]; then
        log "${PG_ROOTFS_IMAGE} is up to date"
    else
        build_pg_rootfs
    fi
    # The thin layer on top (entrypoint, env, healthcheck) is an ordinary Dockerfile build; docker's
    # own layer cache makes it instant when nothing changed. No network is needed for it.
    log "docker build -> ${PG_IMAGE}"
    local old_id
    old_id="$(image_id "$PG_IMAGE")"
    docker_build --network none \
        --build-arg "BASE_IMAGE=${PG_ROOTFS_IMAGE}" --build-arg "PG_MAJOR=${PG_MAJOR}" \
        -t "$PG_IMAGE" "${SCRIPT_DIR}/postgres"
    # Old final image first: it is a child of the old rootfs image.
    retire_image "$old_id" "$PG_IMAGE"
    retire_image "${PG_ROOTFS_OLD_ID:-}" "$PG_ROOTFS_IMAGE"
    log "${PG_IMAGE}: $(image_size_mb "$PG_IMAGE")"
}

# --- step c: service images ----------------------------------------------------------------------
service_port() {
    case "$1" in
        auth-server) echo 8080 ;;
        users-service) echo 8081 ;;
        orders-service) echo 8082 ;;
        demo-web) echo 8083 ;;
        *) die "unknown service $1" ;;
    esac
}

step_services() {
    if [ -z "$BIN_DIR" ]; then
        command -v cargo >/dev/null || die "cargo not found; pass --bin-dir with prebuilt binaries"
        log "building static release binaries (cargo, crt-static)"
        (cd "$REPO_ROOT" && RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
            cargo build --release --locked --target x86_64-unknown-linux-gnu \
            -p auth-server -p users-service -p orders-service -p demo-web)
        BIN_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/x86_64-unknown-linux-gnu/release"
    fi
    local svc bin ctx base kind old_id
    for svc in "${SERVICES[@]}"; do
        bin="${BIN_DIR%/}/${svc}"
        [ -x "$bin" ] || die "missing binary ${bin}"
        ctx="$(mktemp -d)"
        CLEANUP_DIRS+=("$ctx")
        # A static binary runs on an empty filesystem (`FROM scratch`). static glibc resolves
        # docker's DNS names without NSS modules (checked with glibc 2.36). A dynamically linked
        # binary needs libc & co, so it goes on the debian base instead of failing at start.
        if readelf -l "$bin" 2>/dev/null | grep -q 'program interpreter'; then
            base="$BASE_IMAGE"; kind=dynamic
            docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 \
                || die "${svc} is dynamically linked and ${BASE_IMAGE} is missing: run the base step"
        else
            base=scratch; kind=static
        fi
        mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/etc/ssl/certs" "$ctx/rootfs/data" "$ctx/rootfs/tmp"
        # Stripped copy: symbols are not needed at run time and are often half the file.
        strip -o "$ctx/rootfs/usr/local/bin/${svc}" "$bin" 2>/dev/null || cp "$bin" "$ctx/rootfs/usr/local/bin/${svc}"
        chmod 755 "$ctx/rootfs/usr/local/bin/${svc}"
        # Fixed entrypoint name, so ENTRYPOINT/HEALTHCHECK need no per-service text.
        ln -s "${svc}" "$ctx/rootfs/usr/local/bin/service"
        # CA bundle in case ISSUER/AUTH_ISSUER is https (reqwest/sqlx with rustls read it).
        [ -r /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$ctx/rootfs/etc/ssl/certs/"
        # No /etc/passwd needed: the Dockerfile uses a numeric USER. Owners and modes are set here
        # and travel in a tar that the Dockerfile ADDs (COPY from a context would reset owners to
        # root): binary root-owned and read-only for the service user, /data the service user's,
        # /tmp sticky and world-writable. One layer, instead of several COPY --chown steps, which
        # also avoids a classic-builder bug seen here ("failed to get layer ...: layer does not
        # exist") with consecutive COPYs of near-empty directories.
        chown 65532:65532 "$ctx/rootfs/data"
        chmod 0700 "$ctx/rootfs/data"
        chmod 1777 "$ctx/rootfs/tmp"
        tar -C "$ctx/rootfs" --numeric-owner -cf "$ctx/rootfs.tar" usr etc tmp data
        rm -rf "$ctx/rootfs"
        cp "${SCRIPT_DIR}/Dockerfile.service" "$ctx/Dockerfile"
        log "docker build -> ${IMAGE_PREFIX}/${svc}:${IMAGE_TAG} (${kind} binary, FROM ${base})"
        old_id="$(image_id "${IMAGE_PREFIX}/${svc}:${IMAGE_TAG}")"
        docker_build --network none \
            --build-arg "BASE_IMAGE=${base}" --build-arg "SERVICE=${svc}" \
            --build-arg "PORT=$(service_port "$svc")" \
            -t "${IMAGE_PREFIX}/${svc}:${IMAGE_TAG}" "$ctx"
        retire_image "$old_id" "${IMAGE_PREFIX}/${svc}:${IMAGE_TAG}"
        log "${IMAGE_PREFIX}/${svc}:${IMAGE_TAG}: $(image_size_mb "${IMAGE_PREFIX}/${svc}:${IMAGE_TAG}")"
    done
}

# --- main ----------------------------------------------------------------------------------------
if want base || want postgres; then
    ensure_root "${ORIGINAL_ARGS[@]+"${ORIGINAL_ARGS[@]}"}"
    mkdir -p "$AIRGAP_CACHE"
    # Two concurrent runs (parallel CI jobs) would fight over the same cache files.
    exec 9>"${AIRGAP_CACHE}/.lock"
    flock 9
fi
if want services; then
    if ! command -v readelf >/dev/null || ! command -v strip >/dev/null; then ensure_pkg readelf binutils; fi
fi

T_START=$(date +%s)
if want base; then step_base; fi
if want postgres; then step_postgres; fi
if want services; then step_services; fi
log "done in $(( $(date +%s) - T_START ))s"
