"""Builds tiny Docker schema2 and OCI images (and OCI artifacts with a
subject: SBOMs, signatures) with the Python standard library only, in the
layout `skopeo copy ... dir:PATH` writes:

    PATH/version                       "Directory Transport Version: 1.1\\n"
    PATH/manifest.json                 the image manifest (or the manifest list)
    PATH/<hex>                         every blob (config, layers), named by its sha256 hex
    PATH/<hex>.manifest.json           with a manifest list: each instance's manifest

or as an OCI image layout (write_oci_layout: oci-layout, index.json naming
each image with org.opencontainers.image.ref.name, blobs/sha256/<hex>).

Everything is deterministic (fixed mtimes, no gzip timestamp), so the same
arguments give the same digests.

As a script it writes the demo bundle:

    python3 tests/integration/image_builder.py demo/image
    python3 tests/integration/image_builder.py --oci-layout latest demo/oci-layout
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

MEDIA_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_S2 = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_OCI_EMPTY = "application/vnd.oci.empty.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"
DIR_VERSION = b"Directory Transport Version: 1.1\n"
CREATED = "2020-01-01T00:00:00Z"
MTIME = 1577836800


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj):
    """Compact JSON as the Go tools write it (keys in the given order)."""
    return json.dumps(obj, separators=(",", ":")).encode()


def layer_tarball(files):
    """A gzipped tar of `files` ({path: bytes}); returns (gz bytes, diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            data = files[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = MTIME
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, compresslevel=9) as f:
        f.write(tar_bytes)
    return gz.getvalue(), sha256(tar_bytes)


class Image:
    """One single-architecture image: its blobs and its schema2 (or, with
    oci=True, OCI image) manifest."""

    def __init__(self, arch="amd64", os_name="linux", variant=None, files=None, label=None, oci=False):
        self.oci = oci
        self.media_type = MEDIA_OCI_MANIFEST if oci else MEDIA_S2
        self.arch = arch
        self.os = os_name
        self.variant = variant
        if files is None:
            files = {"hello.txt": ("hello from a tiny %s image%s\n" % (
                arch, "" if label is None else " (%s)" % label)).encode()}
        self.layer, diff_id = layer_tarball(files)
        self.layer_digest = sha256(self.layer)
        config = {
            "architecture": arch,
            "os": os_name,
            "created": CREATED,
            "config": {"Cmd": ["/hello.txt"], "Labels": {"built-by": "mod_crane image_builder"}},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": CREATED, "created_by": "image_builder.py"}],
        }
        if variant:
            config["variant"] = variant
        if label is not None:
            config["config"]["Labels"]["test-label"] = label
        self.config = canonical_json(config)
        self.config_digest = sha256(self.config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "config": {"mediaType": MEDIA_OCI_CONFIG if oci else MEDIA_CONFIG, "size": len(self.config),
                       "digest": self.config_digest},
            "layers": [{"mediaType": MEDIA_OCI_LAYER if oci else MEDIA_LAYER, "size": len(self.layer),
                        "digest": self.layer_digest}],
        }
        self.manifest = json.dumps(manifest, indent=3).encode()
        self.digest = sha256(self.manifest)

    @property
    def blobs(self):
        return {self.config_digest: self.config, self.layer_digest: self.layer}

    def platform(self):
        p = {"architecture": self.arch, "os": self.os}
        if self.variant:
            p["variant"] = self.variant
        return p


class ManifestList:
    """A manifest list over several Images (an OCI image index when they are
    OCI images)."""

    def __init__(self, images):
        self.images = list(images)
        self.oci = all(i.oci for i in self.images)
        self.media_type = MEDIA_OCI_INDEX if self.oci else MEDIA_LIST
        body = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "manifests": [{"mediaType": i.media_type, "size": len(i.manifest), "digest": i.digest,
                           "platform": i.platform()} for i in self.images],
        }
        self.manifest = json.dumps(body, indent=3).encode()
        self.digest = sha256(self.manifest)

    @property
    def blobs(self):
        out = {}
        for i in self.images:
            out.update(i.blobs)
        return out

    def image(self, arch):
        return next(i for i in self.images if i.arch == arch)


def multi_arch(label=None, oci=False):
    """amd64 + arm64/v8, as a ManifestList (an OCI index with oci=True)."""
    return ManifestList([Image("amd64", label=label, oci=oci), Image("arm64", variant="v8", label=label, oci=oci)])


class Artifact:
    """An OCI artifact about `subject` (an Image, ManifestList or Artifact):
    an OCI image manifest with artifactType, the empty config, one layer
    holding `payload`, a subject descriptor and annotations, as `oras attach`
    writes an SBOM or a signature."""

    def __init__(self, subject, artifact_type, payload, payload_type, annotations=None):
        self.oci = True
        self.media_type = MEDIA_OCI_MANIFEST
        self.artifact_type = artifact_type
        self.config = b"{}"
        self.payload = payload
        self.annotations = dict(annotations or {})
        body = {
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": MEDIA_OCI_EMPTY, "digest": sha256(self.config), "size": len(self.config)},
            "layers": [{"mediaType": payload_type, "digest": sha256(payload), "size": len(payload)}],
            "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": len(subject.manifest)},
        }
        if self.annotations:
            body["annotations"] = self.annotations
        self.manifest = json.dumps(body, indent=3).encode()
        self.digest = sha256(self.manifest)

    @property
    def blobs(self):
        return {sha256(self.config): self.config, sha256(self.payload): self.payload}

    def descriptor(self):
        """What a referrers response lists for it."""
        d = {"mediaType": self.media_type, "digest": self.digest, "size": len(self.manifest),
             "artifactType": self.artifact_type}
        if self.annotations:
            d["annotations"] = self.annotations
        return d


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o644)


def write_dir(thing, path):
    """Writes an Image or ManifestList to PATH in skopeo's dir: layout."""
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o755)
    _write(os.path.join(path, "version"), DIR_VERSION)
    _write(os.path.join(path, "manifest.json"), thing.manifest)
    if isinstance(thing, ManifestList):
        for image in thing.images:
            _write(os.path.join(path, image.digest[len("sha256:"):] + ".manifest.json"), image.manifest)
    for digest, data in sorted(thing.blobs.items()):
        _write(os.path.join(path, digest[len("sha256:"):]), data)
    return path


def write_oci_layout(path, entries):
    """Writes an OCI image layout at PATH: index.json lists `entries`, pairs
    (Image, ManifestList or Artifact; ref name or None), and blobs/sha256/
    holds every manifest, instance manifest and blob they need."""
    blob_dir = os.path.join(path, "blobs", "sha256")
    os.makedirs(blob_dir, exist_ok=True)
    for d in (path, os.path.join(path, "blobs"), blob_dir):
        os.chmod(d, 0o755)
    _write(os.path.join(path, "oci-layout"), b'{"imageLayoutVersion":"1.0.0"}')
    index = {"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": []}
    blobs = {}
    for thing, name in entries:
        entry = {"mediaType": thing.media_type, "digest": thing.digest, "size": len(thing.manifest)}
        if getattr(thing, "artifact_type", None):
            entry["artifactType"] = thing.artifact_type
        if name is not None:
            entry["annotations"] = {REF_NAME: name}
        index["manifests"].append(entry)
        blobs[thing.digest] = thing.manifest
        for image in getattr(thing, "images", ()):
            blobs[image.digest] = image.manifest
        blobs.update(thing.blobs)
    for digest, data in sorted(blobs.items()):
        _write(os.path.join(blob_dir, digest[len("sha256:"):]), data)
    _write(os.path.join(path, "index.json"), canonical_json(index))
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description="Write a tiny image in skopeo's dir: layout.")
    ap.add_argument("path")
    ap.add_argument("--single", metavar="ARCH", help="one image of this architecture instead of amd64+arm64")
    ap.add_argument("--oci-layout", metavar="REF",
                    help="an OCI image (index) in an OCI image layout, named REF, with an SBOM about it")
    args = ap.parse_args(argv)
    oci = args.oci_layout is not None
    thing = Image(args.single, oci=oci) if args.single else multi_arch(oci=oci)
    if oci:
        sbom = Artifact(thing, "application/spdx+json", b'{"spdxVersion": "SPDX-2.3", "name": "tiny"}\n',
                        "application/spdx+json", {"org.opencontainers.image.created": CREATED})
        write_oci_layout(args.path, [(thing, args.oci_layout), (sbom, None)])
    else:
        write_dir(thing, args.path)
    print(thing.digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
