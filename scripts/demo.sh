#!/usr/bin/env bash
# Installs what is missing, builds mod_crane and runs it in a real httpd on
# 127.0.0.1 with the bundled demo metadata (demo/metadata). Ctrl-C stops it.
#   CRANE_DEMO_PORT=8080  the port (default 8080)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
scripts/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j"$(nproc)" --target mod_crane crane-publish

port=${CRANE_DEMO_PORT:-8080}
dir=$(mktemp -d /tmp/crane-demo.XXXXXX)
chmod 755 "$dir"
cp -r demo/metadata "$dir/metadata"
sed -i "s#127.0.0.1:8080#127.0.0.1:$port#g" "$dir"/metadata/*.json
mkdir -p "$dir/pub/v2"
# real (tiny, amd64 + arm64) images, published the way a user would: a
# Docker manifest list from skopeo's dir: layout, and an OCI image index
# with an SBOM about it from an OCI image layout
build/release/crane-publish --repo-id demo/tiny --base-url "http://127.0.0.1:$port/pub/v2" \
    --out "$dir/pub/v2" --metadata "$dir/metadata" --quiet latest=demo/image
build/release/crane-publish --repo-id demo/tiny-oci --base-url "http://127.0.0.1:$port/pub/v2" \
    --out "$dir/pub/v2" --metadata "$dir/metadata" --quiet latest=oci:demo/oci-layout:latest
chmod -R a+rX "$dir"

moddir=$(apxs -q LIBEXECDIR)
httpd=$(command -v apache2 || command -v httpd)
user=""
[ "$(id -u)" -eq 0 ] && user=$'User www-data\nGroup www-data'
cat > "$dir/httpd.conf" <<CONF
ServerRoot "$dir"
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile $dir/httpd.pid
# the index snapshot goes to DefaultRuntimeDir/crane: the demo keeps it in its dir
DefaultRuntimeDir $dir
ErrorLog /dev/stderr
LogLevel info
LoadModule mpm_event_module $moddir/mod_mpm_event.so
LoadModule authz_core_module $moddir/mod_authz_core.so
LoadModule authz_host_module $moddir/mod_authz_host.so
LoadModule mime_module $moddir/mod_mime.so
LoadModule alias_module $moddir/mod_alias.so
LoadModule crane_module $top/build/release/mod_crane.so
$user
TypesConfig /etc/mime.types
DocumentRoot $dir/pub
CraneDataDir $dir/metadata
CranePollInterval 5
<Location "/v1">
    SetHandler crane
</Location>
<Location "/v2">
    SetHandler crane
</Location>
<Location "/crane">
    SetHandler crane
    Require local
</Location>
# the published image files that the redirects point at
Alias /pub $dir/pub
<Directory $dir/pub>
    Require all granted
</Directory>
# clients take a redirected manifest's type from Content-Type
<LocationMatch "^/pub/v2/.+/manifests/2/[^/]+\$">
    ForceType application/vnd.docker.distribution.manifest.v2+json
</LocationMatch>
<LocationMatch "^/pub/v2/.+/manifests/list/[^/]+\$">
    ForceType application/vnd.docker.distribution.manifest.list.v2+json
</LocationMatch>
<LocationMatch "^/pub/v2/.+/manifests/oci/[^/]+\$">
    ForceType application/vnd.oci.image.manifest.v1+json
</LocationMatch>
<LocationMatch "^/pub/v2/.+/manifests/oci-index/[^/]+\$">
    ForceType application/vnd.oci.image.index.v1+json
</LocationMatch>
<LocationMatch "^/pub/v2/.+/blobs/[^/]+\$">
    ForceType application/octet-stream
</LocationMatch>
<LocationMatch "^/pub/v2/(.+/tags/list|\\.errors/[^/]+)\$">
    ForceType application/json
</LocationMatch>
# a missing file answers the registry's JSON error, not an HTML page
<Location "/pub/v2">
    ErrorDocument 404 /pub/v2/.errors/name-unknown.json
</Location>
<LocationMatch "^/pub/v2/.+/manifests/">
    ErrorDocument 404 /pub/v2/.errors/manifest-unknown.json
</LocationMatch>
<LocationMatch "^/pub/v2/.+/blobs/">
    ErrorDocument 404 /pub/v2/.errors/blob-unknown.json
</LocationMatch>
CONF

base="http://127.0.0.1:$port"
cat <<MSG

mod_crane demo: $base  (metadata in $dir/metadata; edit or add files there,
they are picked up within 5 s). Try:

  curl -si $base/v2/
  curl -si $base/v2/demo/hello/manifests/latest
  curl -si -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' $base/v2/demo/hello/manifests/latest
  curl -si $base/v2/demo/hello/blobs/sha256:6d1ef012b5674ad8a127ecfa9b5e6f5178d171b90ee462846974177fd9bdd39f
  curl -si $base/v2/_catalog
  curl -si $base/v1/repositories/busybox/tags
  curl -si $base/v1/images/4986bf8c15363d1c5d15512d5266f8777bfba4974ac56e3270e7760f6f0a8125/json
  curl -s -H 'Accept: application/json' $base/crane/repositories/v2

and pull real images (published at startup by crane-publish: a Docker
manifest list from demo/image, an OCI image index with an SBOM from the OCI
image layout demo/oci-layout):

  skopeo inspect --tls-verify=false docker://127.0.0.1:$port/demo/tiny:latest
  skopeo copy --all --src-tls-verify=false docker://127.0.0.1:$port/demo/tiny:latest dir:/tmp/tiny
  podman pull --tls-verify=false 127.0.0.1:$port/demo/tiny:latest
  skopeo inspect --raw --tls-verify=false docker://127.0.0.1:$port/demo/tiny-oci:latest
  skopeo copy --all --src-tls-verify=false docker://127.0.0.1:$port/demo/tiny-oci:latest oci:/tmp/tiny-oci:latest
  podman pull --tls-verify=false 127.0.0.1:$port/demo/tiny-oci:latest
  curl -s $base/v2/demo/tiny-oci/referrers/sha256:79b6d84a8959980974068af3dc4fa78d7538383d9dba0c4b20672ae63d64b32d

Ctrl-C stops the server.
MSG
exec "$httpd" -f "$dir/httpd.conf" -DFOREGROUND
