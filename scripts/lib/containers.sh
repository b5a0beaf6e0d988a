# Container storage shared by scripts/image-bases and scripts/check-image (sourced, not run).
#
# The store is the project's own (its own root under /var/lib/containers), so pruning it and
# removing stale build containers never touches anyone else's images. The driver:
#  - overlay when the kernel mounts an overlay on the store's file system (checked by mounting
#    one): a layer costs only what it changes, ~4 GB for the whole build;
#  - vfs otherwise: every layer is a full copy of the file system below it, ~20 GB for the
#    build. That is what filled the disk of a CI run once, so vfs is only the fallback.
# IMAGE_STORAGE_DRIVER=overlay|vfs overrides the probe.
#
# Sets: storage_driver, storage_root, and the arrays buildah=(...) podman=(...).
containers_base=/var/lib/containers

pick_storage() {
  storage_driver="${IMAGE_STORAGE_DRIVER:-}"
  mkdir -p "$containers_base"
  if [[ -z $storage_driver ]]; then
    local probe
    probe="$(mktemp -d "$containers_base/.overlay-probe.XXXXXX")"
    mkdir -p "$probe"/{lower,upper,work,merged}
    storage_driver=vfs
    if mount -t overlay overlay -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" \
      "$probe/merged" 2>/dev/null; then
      umount "$probe/merged"
      storage_driver=overlay
    fi
    rm -rf "$probe"
  fi
  case $storage_driver in
    overlay | vfs) ;;
    *) printf 'containers: IMAGE_STORAGE_DRIVER=%s: use overlay or vfs\n' "$storage_driver" >&2; return 1 ;;
  esac
  storage_root="$containers_base/image-processor-$storage_driver"
  local storage=(--storage-driver "$storage_driver" --root "$storage_root"
    --runroot "/run/containers/image-processor-$storage_driver")
  # runc and cgroupfs: crun refuses this host's hybrid cgroups.
  buildah=(buildah "${storage[@]}")
  podman=(podman "${storage[@]}" --runtime runc --cgroup-manager cgroupfs)
}

# Free space in GB on the file system holding $1.
free_gb() { df --output=avail -BG "$1" 2>/dev/null | tail -1 | tr -dc '0-9'; }
