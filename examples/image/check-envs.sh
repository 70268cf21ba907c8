#!/bin/bash
# osl-check-envs ENVS_ROOT: fail the image build when the envs under ENVS_ROOT would make starts slow or broken.
#
# - Each env's path must be at least as long as its place in the home ($OSL_HOME_MOUNT/$OSL_ENVS_DIR/NAME):
#   binary files can only take a prefix that fits where the old one was.
# - Every file must be readable by the notebook user (it copies them); no file may be writable by others.
# - All envs together must stay within $OSL_IMAGE_BUDGET_GB: the node's disk holds the image (compressed
#   layers and the unpacked copy), its previous version during an update, and the other pods' images.
set -euo pipefail

root=${1:?usage: osl-check-envs ENVS_ROOT}
home=${OSL_HOME_MOUNT:-/home/jovyan}
envs_dir=${OSL_ENVS_DIR:-.local/envs}
budget_gb=${OSL_IMAGE_BUDGET_GB:-6}
status=0

shopt -s nullglob
envs=("$root"/*/)
if [ ${#envs[@]} -eq 0 ]; then
    echo "osl-check-envs: no env in $root" >&2
    exit 1
fi
for env in "${envs[@]}"; do
    env=${env%/}
    name=$(basename "$env")
    target="$home/$envs_dir/$name"
    if [ ${#env} -lt ${#target} ]; then
        echo "osl-check-envs: $env (${#env} characters) is shorter than its place in the home, $target" \
            "(${#target}): build it at a longer path, or at $target itself" >&2
        status=1
    fi
    unreadable=$(find "$env" ! -perm -o+r -printf '  %P\n' | head -n 5)
    if [ -n "$unreadable" ]; then
        echo "osl-check-envs: files in $env the notebook user cannot read (chmod -R a+rX $env):" >&2
        echo "$unreadable" >&2
        status=1
    fi
done
bytes=$(du -sbc "${envs[@]}" | tail -n 1 | cut -f 1)
budget=$((budget_gb * 1024 * 1024 * 1024))
echo "osl-check-envs: ${#envs[@]} envs, $((bytes / 1024 / 1024)) MiB (budget ${budget_gb} GiB)"
if [ "$bytes" -gt "$budget" ]; then
    echo "osl-check-envs: the envs take more than OSL_IMAGE_BUDGET_GB=${budget_gb} GiB; a 20 GB node disk" \
        "will not hold the image next to its previous version" >&2
    status=1
fi
exit $status
