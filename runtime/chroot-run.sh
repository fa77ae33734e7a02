#!/bin/sh
# kiln chroot isolation (read by src/sandbox/chroot.ts). Runs inside a fresh
# mount (and, where the host allows, pid/ipc/uts/net) namespace created by
# unshare(1); sets up the rootfs the way bwrap would, then chroots into it.
#
# usage: chroot-run.sh ROOT HOSTNAME CWD [KIND SRC DEST]... -- ARGV...
#   KIND: ro | rw (bind SRC on DEST) | tmpfs (SRC = size in bytes or "-")
#   DEST paths are absolute inside ROOT and already resolved (no symlinks).
#   ARGV runs chrooted in CWD; it undoes the PWD/OLDPWD this shell exports.
# Variables are prefixed so that they cannot clobber the step's environment.
set -eu
_kiln_path=/usr/sbin:/usr/bin:/sbin:/bin
_kiln_root=$1 _kiln_host=$2 _kiln_cwd=$3
shift 3

_kiln() { PATH=$_kiln_path "$@"; }

_kiln mount --make-rprivate / 2>/dev/null || true
# A fresh /proc; where the kernel refuses one (a masked /proc, as in most
# containers), the current /proc: RUN then sees the container's processes.
_kiln mount -t proc -o nosuid,nodev,noexec proc "$_kiln_root/proc" 2>/dev/null ||
  _kiln mount --rbind /proc "$_kiln_root/proc"
_kiln mount -t tmpfs -o nosuid,mode=0755,size=65536k tmpfs "$_kiln_root/dev"
for _kiln_d in null zero full random urandom tty; do
  : > "$_kiln_root/dev/$_kiln_d"
  _kiln mount --bind "/dev/$_kiln_d" "$_kiln_root/dev/$_kiln_d"
done
_kiln mkdir -m 0755 "$_kiln_root/dev/pts"
_kiln mkdir -m 1777 "$_kiln_root/dev/shm"
_kiln mount -t devpts -o nosuid,noexec,newinstance,ptmxmode=0666,mode=0620 devpts "$_kiln_root/dev/pts" 2>/dev/null || true
_kiln ln -s pts/ptmx "$_kiln_root/dev/ptmx"
_kiln ln -s /proc/self/fd "$_kiln_root/dev/fd"
_kiln ln -s /proc/self/fd/0 "$_kiln_root/dev/stdin"
_kiln ln -s /proc/self/fd/1 "$_kiln_root/dev/stdout"
_kiln ln -s /proc/self/fd/2 "$_kiln_root/dev/stderr"
_kiln hostname "$_kiln_host" 2>/dev/null || true
_kiln mkdir -m 0755 "$_kiln_root/dev/.kiln"

while [ "$1" != "--" ]; do
  _kiln_kind=$1 _kiln_src=$2 _kiln_dest=$_kiln_root$3
  shift 3
  case $_kiln_kind in
    ro|rw)
      if [ -d "$_kiln_src" ]; then
        _kiln mkdir -p "$_kiln_dest"
      else
        _kiln mkdir -p "$(_kiln dirname "$_kiln_dest")"
        [ -e "$_kiln_dest" ] || : > "$_kiln_dest"
      fi
      _kiln mount --rbind "$_kiln_src" "$_kiln_dest"
      if [ "$_kiln_kind" = ro ]; then _kiln mount -o remount,bind,ro "$_kiln_dest"; fi
      ;;
    tmpfs)
      _kiln mkdir -p "$_kiln_dest"
      if [ "$_kiln_src" = - ]; then
        _kiln mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs "$_kiln_dest"
      else
        _kiln mount -t tmpfs -o "nosuid,nodev,mode=1777,size=$_kiln_src" tmpfs "$_kiln_dest"
      fi
      ;;
  esac
done
shift
_kiln_unshare=$(PATH=$_kiln_path command -v unshare)
_kiln_r=$_kiln_root _kiln_w=$_kiln_cwd
unset _kiln_root _kiln_host _kiln_cwd _kiln_kind _kiln_src _kiln_dest _kiln_d _kiln_path
exec "$_kiln_unshare" --root="$_kiln_r" --wd="$_kiln_w" "$@"
