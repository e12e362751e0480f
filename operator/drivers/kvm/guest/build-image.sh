#!/usr/bin/env bash
# Builds the KVM driver's guest image from Debian packages: a root filesystem with systemd,
# sshd, containerd, runc, the CNI plugins and tmux (debootstrap), crictl (AGENTTYPE_GUEST_CRICTL,
# else built from the Go module proxy with the test cluster's components), the Debian cloud kernel
# and a small initrd for direct kernel boot, the project's images already in the guest's
# containerd, packed as a qcow2 base that every guest boots from through an overlay.
#
#   operator/drivers/kvm/guest/build-image.sh          build (or reuse) and print the image's directory
#   operator/drivers/kvm/guest/build-image.sh key      print the key of the image the inputs make
#   operator/drivers/kvm/guest/build-image.sh rootfs   only the root filesystem tar (debootstrap, no
#                                                      images): `make test` makes it ahead
#
# The output directory $AGENTTYPE_CACHE/guest/<key>/ holds disk.qcow2, vmlinuz, initrd.img and
# inputs.txt; <key> is a hash of every input (suite, packages, the files under rootfs/, crictl, the
# images' ids), so an unchanged image is reused and a changed input builds a new one. The root
# filesystem alone is cached as well (rootfs-<hash>.tar), keyed without the images: a new
# sidecar image re-packs the disk without a new debootstrap. Needs root (debootstrap, mounts).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../../.." && pwd)
# shellcheck source=../../../../tests/cluster/lib.sh
. "$REPO/tests/cluster/lib.sh"

SUITE=${AGENTTYPE_GUEST_SUITE:-bookworm}
DEBIAN_MIRROR=${AGENTTYPE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DISK_SIZE=${AGENTTYPE_GUEST_DISK_SIZE:-4G}
# tmux holds the consoles of interactive agents (docs/adr/0014-host-consoles.md).
PACKAGES=(systemd-sysv udev dbus kmod linux-image-cloud-amd64 initramfs-tools busybox-static openssh-server
  containerd runc containernetworking-plugins iproute2 iptables tmux)
# The images every guest runs without pulling: the sandbox's, the sidecar's and wrapper's, and
# the sample agents of the tests (AGENTTYPE_GUEST_IMAGES replaces the list).
read -r -a IMAGES <<<"${AGENTTYPE_GUEST_IMAGES:-localhost/agenttype/pause:1.0 localhost/agenttype/sidecar:dev localhost/agenttype/wrapper:dev localhost/agenttype/e2e-agent-node:dev}"
CACHE=$AGENTTYPE_CACHE/guest
IMAGES_SH=$REPO/tests/cluster/images.sh

log() { at_log "guest-image: $*"; }
die() { at_die "guest-image: $*"; }

need_tools() {
  [ "$(id -u)" = 0 ] || die "building the guest image needs root (debootstrap, mounts)"
  local missing=()
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v mke2fs >/dev/null || missing+=(e2fsprogs)
  command -v qemu-img >/dev/null || missing+=(qemu-utils)
  command -v cpio >/dev/null || missing+=(cpio)
  command -v containerd >/dev/null || missing+=(containerd)
  [ ${#missing[@]} = 0 ] && return 0
  at_apt_install "${missing[@]}"
}

# The key of the root filesystem: suite, packages and the function that builds it.
rootfs_key() {
  { echo "suite=$SUITE packages=${PACKAGES[*]}"; declare -f build_rootfs; } | sha256sum | cut -c1-16
}

image_ids() {
  local image
  for image in "${IMAGES[@]}"; do
    printf '%s %s\n' "$image" "$("$IMAGES_SH" buildah inspect --type image --format '{{.FromImageID}}' "$image" 2>/dev/null)"
  done
}

# The key of the image: the root filesystem's, the files under rootfs/, how they are applied
# and packed, and the images' ids.
image_key() {
  {
    rootfs_key
    (cd "$HERE/rootfs" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
    (cd "$HERE/rootfs" && find . -printf '%p %m\n' | sort)
    sha256sum <"$HERE/initrd/init"
    sha256sum <"$CRICTL"
    declare -f configure build_image import_images build_initrd
    declare -p INITRD_MODULES
    declare -p UNNEEDED_UNITS UNNEEDED_GENERATORS
    image_ids
  } | sha256sum | cut -c1-16
}

ensure_images() {
  local image absent=0
  for image in "${IMAGES[@]}"; do
    "$IMAGES_SH" buildah inspect --type image "$image" >/dev/null 2>&1 || absent=1
  done
  [ $absent = 0 ] && return 0
  log "building the project's images (tests/cluster/images.sh)"
  "$IMAGES_SH" pause >&2
  "$IMAGES_SH" project >&2
  "$IMAGES_SH" e2e >&2
}

umount_under() {
  local m
  awk -v d="$1/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | while IFS= read -r m; do umount -l "$m" || true; done
}

build_rootfs() {
  local tar=$1 dir
  dir=$(mktemp -d "$CACHE/.rootfs.XXXXXX")
  log "debootstrap $SUITE with ${PACKAGES[*]} from $DEBIAN_MIRROR (a few minutes)"
  local include; include=$(IFS=,; echo "${PACKAGES[*]}")
  if ! debootstrap --variant=minbase --include="$include" "$SUITE" "$dir" "$DEBIAN_MIRROR" \
    >"$CACHE/debootstrap.log" 2>&1; then
    umount_under "$dir"; rm -rf "$dir"
    die "debootstrap failed, see $CACHE/debootstrap.log"
  fi
  umount_under "$dir"
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/var/log/*.log \
    "$dir"/tmp/* "$dir"/var/tmp/* "$dir"/debootstrap
  tar -C "$dir" --numeric-owner --xattrs --exclude=./dev/* --exclude=./proc/* --exclude=./sys/* -cf "$tar.tmp" .
  rm -rf "$dir"
  mv "$tar.tmp" "$tar"
}

# The project's files and settings on the Debian root filesystem. Units a guest does not need
# are masked: under software emulation every one costs seconds of boot.
UNNEEDED_UNITS=(apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer
  e2scrub_reap.service fstrim.timer getty@tty1.service serial-getty@ttyS0.service
  systemd-logind.service
  modprobe@configfs.service modprobe@dm_mod.service modprobe@efi_pstore.service
  modprobe@fuse.service modprobe@loop.service kmod-static-nodes.service
  systemd-network-generator.service systemd-random-seed.service systemd-sysusers.service
  systemd-journal-flush.service systemd-update-utmp.service systemd-update-utmp-runlevel.service
  systemd-tmpfiles-clean.timer
  sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount
  sys-fs-fuse-connections.mount dev-hugepages.mount systemd-modules-load.service
  dbus.service dbus.socket systemd-pstore.service
  ssh.service ssh.socket systemd-networkd.service systemd-networkd.socket
  systemd-networkd-wait-online.service
  systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket
  systemd-udev-trigger.service systemd-udev-settle.service)
# Generators that find nothing to do in a guest (no initscripts, encrypted or verity volumes,
# hibernation, gettys or kernel-command-line units) but cost an exec each at every boot.
UNNEEDED_GENERATORS=(systemd-debug-generator systemd-gpt-auto-generator systemd-rc-local-generator
  systemd-cryptsetup-generator systemd-hibernate-resume-generator systemd-sysv-generator
  systemd-veritysetup-generator systemd-integritysetup-generator systemd-run-generator
  systemd-system-update-generator systemd-getty-generator)
# crictl (cri-tools, not packaged by Debian): the consoles of interactive agents attach with it,
# and exec -i/-t runs with it. AGENTTYPE_GUEST_CRICTL names one; else the harness builds it
# from the Go module proxy with the cluster's components (tests/cluster/build-components.sh).
crictl_path() {
  if [ -n "${AGENTTYPE_GUEST_CRICTL:-}" ]; then
    echo "$AGENTTYPE_GUEST_CRICTL"
    return
  fi
  local bin
  bin=$("$REPO/tests/cluster/build-components.sh" | tail -n 1) || die "building crictl failed (tests/cluster/build-components.sh)"
  echo "$bin/crictl"
}

configure() {
  local dir=$1
  cp -a "$HERE/rootfs/." "$dir/"
  install -m 0755 "$CRICTL" "$dir/usr/local/bin/crictl"
  # Debian's ssh.service and networkd wait for udev's coldplug; the image's own units do not.
  chroot "$dir" systemctl disable ssh.service >&2
  chroot "$dir" systemctl enable agenttype-seed.service agenttype-sshd.service agenttype-dhcp.service \
    agenttype-pod-network.service >&2
  chroot "$dir" systemctl mask "${UNNEEDED_UNITS[@]}" >&2
  local generator
  mkdir -p "$dir/etc/systemd/system-generators"
  for generator in "${UNNEEDED_GENERATORS[@]}"; do
    ln -sf /dev/null "$dir/etc/systemd/system-generators/$generator"
  done
  # Debian's ssh unit and postinst made host keys: a guest has only the one its seed brings.
  rm -f "$dir"/etc/ssh/ssh_host_*
  # No password can log in ('*'), and the operator's commands run in dash: every command is a
  # session of its own, and under software emulation each program started is slow; dash starts
  # with less than bash (which reads .bashrc when sshd runs it). sshd runs without PAM.
  chroot "$dir" usermod -p '*' -s /bin/sh root
  printf '/dev/vda / ext4 defaults,noatime 0 0\n' >"$dir/etc/fstab"
  : >"$dir/etc/hostname"
  printf 'deb %s %s main\n' "$DEBIAN_MIRROR" "$SUITE" >"$dir/etc/apt/sources.list"
}

# The guest's initrd, in place of initramfs-tools' (whose udev and scripts took about five
# seconds of every boot under software emulation): busybox, the modules the root file system
# needs with their dependencies in load order, and initrd/init that loads them, mounts root and
# hands over. Uncompressed: there is nothing for the emulated CPU to unpack. virtio_net too: the
# DHCP client starts with systemd and finds eth0 there. And what a pod's start would otherwise
# load through modprobe (one slow exec each under software emulation): overlay for containerd's
# snapshots, bridge and veth for the CNI network, the netfilter modules of its masquerade. And
# virtio_rng, which udev would load: without the host's entropy the kernel's random pool is
# ready only tens of seconds into the boot under TCG (no RDRAND either), and every program that
# asks for random bytes first (Node, sshd) waits for it.
INITRD_MODULES=(virtio_pci virtio_blk virtio_net virtio_rng ext4 overlay bridge veth xt_MASQUERADE
  nft_chain_nat nft_compat)
build_initrd() {
  local root=$1 out=$2 kver dir module path
  kver=$(basename "$(find "$root/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n 1)")
  [ -x "$root/bin/busybox" ] || die "no /bin/busybox in the root filesystem (package busybox-static)"
  dir=$(mktemp -d "$CACHE/.initrd.XXXXXX")
  mkdir -p "$dir/bin" "$dir/dev" "$dir/proc" "$dir/root"
  install -m 0755 "$root/bin/busybox" "$dir/bin/busybox"
  install -m 0755 "$HERE/initrd/init" "$dir/init"
  : >"$dir/modules"
  for module in "${INITRD_MODULES[@]}"; do
    chroot "$root" modprobe --set-version "$kver" --show-depends "$module" ||
      die "modprobe --show-depends $module failed for kernel $kver"
  done >"$dir/depends"
  while read -r path; do
    install -D -m 0644 "$root$path" "$dir$path"
    echo "$path" >>"$dir/modules"
  done < <(awk '$1 == "insmod" && !seen[$2]++ { print $2 }' "$dir/depends")
  rm "$dir/depends"
  [ -s "$dir/modules" ] || die "no modules for the initrd (kernel $kver)"
  (cd "$dir" && find . -mindepth 1 -print0 | sort -z | cpio --null -o -H newc --quiet -R 0:0) >"$out"
  rm -rf "$dir"
}

# A containerd of our own on the image's store: imports the images into the guest's
# /var/lib/containerd as the guest's containerd will find them (same Debian containerd).
import_images() {
  local root=$1 tmp=$2 sock=$2/containerd.sock pid
  mkdir -p "$tmp/state" "$root/var/lib/containerd"
  cat >"$tmp/config.toml" <<CONF
version = 2
root = "$root/var/lib/containerd"
state = "$tmp/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
CONF
  containerd --config "$tmp/config.toml" >"$tmp/containerd.log" 2>&1 &
  pid=$!
  at_wait_for "containerd for the image import" 30 ctr -a "$sock" version ||
    { kill "$pid" 2>/dev/null; die "containerd did not start: $(tail -n 5 "$tmp/containerd.log")"; }
  local status=0
  AGENTTYPE_STATE=$tmp AGENTTYPE_CONTAINERD_SOCK=$sock "$IMAGES_SH" import "${IMAGES[@]}" >&2 || status=$?
  kill "$pid"; wait "$pid" 2>/dev/null || true
  umount_under "$root"
  [ $status = 0 ] || die "importing the images into the guest's containerd failed"
}

build_image() {
  local out=$1 tar=$2 work
  work=$(mktemp -d "$CACHE/.image.XXXXXX")
  mkdir -p "$work/root"
  tar -C "$work/root" --numeric-owner --xattrs -xpf "$tar"
  configure "$work/root"
  import_images "$work/root" "$work/ctrd"
  cp "$work/root/boot/vmlinuz-"* "$work/vmlinuz"
  build_initrd "$work/root" "$work/initrd.img"
  log "packing the root filesystem ($(du -sh "$work/root" | cut -f1)) into a $DISK_SIZE ext4 qcow2"
  mke2fs -q -t ext4 -L agenttype-root -d "$work/root" "$work/disk.raw" "$DISK_SIZE"
  qemu-img convert -f raw -O qcow2 "$work/disk.raw" "$work/disk.qcow2"
  rm -rf "$work/root" "$work/ctrd" "$work/disk.raw"
  { echo "suite=$SUITE"; echo "packages=${PACKAGES[*]}"; image_ids; } >"$work/inputs.txt"
  chmod 0755 "$work"
  rm -rf "$out"
  mv "$work" "$out"
}

# Keeps the image just built and the newest other one (guests may still run on it); older
# images and root filesystems no current input names go.
prune() {
  local keep=$1 dir n=0
  while read -r dir; do
    [ "$(basename "$dir")" = "$keep" ] && continue
    n=$((n + 1))
    [ $n -le 1 ] || { log "removing the old image $(basename "$dir")"; rm -rf "$dir"; }
  done < <(find "$CACHE" -mindepth 1 -maxdepth 1 -type d -regex '.*/[0-9a-f]\{16\}' -printf '%T@ %p\n' | sort -rn | cut -d' ' -f2-)
  find "$CACHE" -maxdepth 1 -name 'rootfs-*.tar' ! -name "rootfs-$(rootfs_key).tar" -delete
}

# One build at a time in $CACHE, held until the script exits.
lock_cache() {
  exec 9>"$CACHE/.lock"
  flock -w 1800 9 || die "another build holds $CACHE/.lock"
}

main() {
  mkdir -p "$CACHE"
  case ${1:-build} in key | build) CRICTL=$(crictl_path); [ -x "$CRICTL" ] || die "no crictl at $CRICTL" ;; esac
  case ${1:-build} in
    key) image_key ;;
    rootfs)
      need_tools
      lock_cache
      local tar
      tar=$CACHE/rootfs-$(rootfs_key).tar
      [ -s "$tar" ] || build_rootfs "$tar"
      echo "$tar" ;;
    build)
      need_tools
      lock_cache
      ensure_images
      local key out tar t0=$SECONDS
      key=$(image_key)
      out=$CACHE/$key
      if [ -s "$out/disk.qcow2" ] && [ -s "$out/vmlinuz" ] && [ -s "$out/initrd.img" ]; then
        log "image $key is up to date"
      else
        tar=$CACHE/rootfs-$(rootfs_key).tar
        [ -s "$tar" ] || build_rootfs "$tar"
        build_image "$out" "$tar"
        log "image $key built in $((SECONDS - t0))s: $(du -h "$out/disk.qcow2" | cut -f1) qcow2"
        prune "$key"
      fi
      echo "$out" ;;
    *) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
}

main "$@"
