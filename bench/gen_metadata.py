#!/usr/bin/env python3
"""Synthetic Crane metadata: N repositories as Pulp publishes them.

Most repos are version 4 (schema2_data, manifest_list_data and
manifest_list_amd64_tags, ~20 tags each, sha256 digests); a fraction are
version 1 (images + tags, 64-hex image ids shared between related repos);
a few are protected. Names look like Red Hat / Pulp ones
("rhel7/rhel-tools", "openshift3/ose-haproxy-router-142"). Output is
deterministic for a given --seed.

    bench/gen_metadata.py OUT_DIR --repos 10000 [--v1-fraction 0.05]
        [--tags 20] [--subdirs 0] [--seed 1] [--manifest FILE]

--subdirs K spreads the files over K subdirectories (v1/ and v2/ like a
Pulp publish tree, then K buckets below them); 0 writes them all flat.
--manifest FILE writes one JSON line per repo: {"file", "id", "version",
"url", "tags"} so load tools know what to ask for.

Importable: v4_doc(), v1_doc(), repo_name(), generate().
"""

import argparse
import hashlib
import json
import os
import random
import sys

VENDORS = ["rhel7", "rhel8", "ubi8", "ubi9", "openshift3", "openshift4", "rhscl", "jboss-eap-7",
           "rhgs3", "cloudforms46", "rhceph", "amq7", "fuse7", "dotnet", "devtools", "rh-sso-7",
           "library", "quay", "ansible-tower-37", "rhosp13"]
WORDS = ["rhel", "tools", "httpd", "nginx", "postgresql", "mysql", "redis", "python", "nodejs",
         "ruby", "perl", "php", "golang", "openjdk", "haproxy", "router", "registry", "console",
         "logging", "fluentd", "elasticsearch", "kibana", "prometheus", "grafana", "etcd",
         "builder", "deployer", "pod", "keepalived", "ipfailover", "operator", "metering",
         "sriov", "ovn", "multus", "cli", "artifacts", "agent", "proxy", "server", "base",
         "minimal", "micro", "init", "toolbox", "support-tools", "s2i", "mariadb", "mongodb"]
TAG_STREAMS = ["7.9", "8.6", "1.18", "3.11", "4.12", "2.4", "12", "14", "latest"]


def repo_name(i, rng):
    vendor = rng.choice(VENDORS)
    a, b = rng.choice(WORDS), rng.choice(WORDS)
    base = a if a == b else "%s-%s" % (a, b)
    # the index number keeps names unique
    return "%s/%s-%d" % (vendor, base, i)


def digest(*parts):
    return "sha256:" + hashlib.sha256(":".join(parts).encode()).hexdigest()


def tag_list(name, n, rng):
    stream = rng.choice(TAG_STREAMS)
    tags = ["latest"]
    for k in range(n - 1):
        if k % 3 == 2:
            tags.append("%s-%d.%d" % (stream, 1 + k // 3, rng.randrange(1, 40)))
        else:
            tags.append("%s.%d-%d" % (stream, k // 3, rng.randrange(1, 200)))
    return list(dict.fromkeys(tags))


def url_for(pulp_repo, version):
    return "https://cdn.example.com/content/dist/rhel/server/7/7Server/x86_64/containers/%s/%s/" % (
        "v1" if version == 1 else "v2", pulp_repo)


def pulp_repo_id(name):
    return name.replace("/", "-")


def v4_doc(name, tags, protected=False, url=None):
    """A version-4 metadata document like Pulp 2's docker distributor writes:
    every tag has a schema2 manifest; about a quarter of the tags are
    manifest lists, whose amd64 image is listed in manifest_list_amd64_tags."""
    pulp = pulp_repo_id(name)
    schema2 = []
    lists = []
    amd64 = {}
    for k, tag in enumerate(tags):
        schema2.append(tag)
        schema2.append(digest(name, tag, "s2"))
        if k % 4 == 0:
            lists.append(tag)
            lists.append(digest(name, tag, "list"))
            amd64[tag] = [digest(name, tag, "amd64"), 2 if k % 8 == 0 else 1]
    return {
        "repo-registry-id": name,
        "repository": pulp,
        "url": url or url_for(pulp, 4),
        "version": 4,
        "protected": protected,
        "type": "pulp-docker",
        "schema2_data": schema2,
        "manifest_list_data": lists,
        "manifest_list_amd64_tags": amd64,
    }


def v1_doc(name, tags, protected=False, url=None, family=None):
    """A version-1 document; image ids are shared within a `family` so one
    image belongs to several repositories, as in real v1 publishes."""
    pulp = pulp_repo_id(name)
    fam = family or name
    images = [hashlib.sha256(("%s:layer%d" % (fam, k)).encode()).hexdigest() for k in range(len(tags) + 2)]
    return {
        "repo-registry-id": name,
        "repository": pulp,
        "url": url or url_for(pulp, 1),
        "version": 1,
        "protected": protected,
        "type": "pulp-docker",
        "images": [{"id": i} for i in images],
        "tags": {t: images[k] for k, t in enumerate(tags)},
    }


def write_json(path, doc):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, separators=(", ", ": "))
    os.chmod(tmp, 0o644)
    os.rename(tmp, path)


def generate(out_dir, repos, v1_fraction=0.05, tags=20, subdirs=0, seed=1, protected_fraction=0.02,
             manifest=None, prefix=""):
    """Writes `repos` files under out_dir; returns the list of manifest entries."""
    rng = random.Random(seed)
    os.makedirs(out_dir, exist_ok=True)
    os.chmod(out_dir, 0o755)
    made_dirs = set()
    entries = []
    n_v1 = int(round(repos * v1_fraction))
    v1_every = (repos // n_v1) if n_v1 else 0
    for i in range(repos):
        name = prefix + repo_name(i, rng)
        version = 1 if v1_every and i % v1_every == v1_every - 1 and n_v1 > 0 else 4
        tl = tag_list(name, tags + rng.randrange(-3, 4) if tags > 3 else tags, rng)
        protected = rng.random() < protected_fraction
        if version == 1:
            n_v1 -= 1
            doc = v1_doc(name, tl, protected, family=name.split("/")[0] + str(i % 7))
        else:
            doc = v4_doc(name, tl, protected)
        fname = pulp_repo_id(name) + ".json"
        if subdirs:
            rel = os.path.join("v1" if version == 1 else "v2", "b%03d" % (i % subdirs), fname)
        else:
            rel = fname
        path = os.path.join(out_dir, rel)
        d = os.path.dirname(path)
        if d not in made_dirs:
            os.makedirs(d, exist_ok=True)
            # the httpd children (www-data) walk these too
            p = d
            while p != out_dir and len(p) > len(out_dir):
                os.chmod(p, 0o755)
                p = os.path.dirname(p)
            made_dirs.add(d)
        write_json(path, doc)
        entries.append({"file": rel, "id": name, "version": version, "url": doc["url"],
                        "protected": protected, "tags": tl})
    if manifest:
        with open(manifest, "w") as f:
            for e in entries:
                f.write(json.dumps(e) + "\n")
    return entries


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--repos", type=int, default=1000)
    ap.add_argument("--v1-fraction", type=float, default=0.05)
    ap.add_argument("--protected-fraction", type=float, default=0.02)
    ap.add_argument("--tags", type=int, default=20)
    ap.add_argument("--subdirs", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--manifest")
    args = ap.parse_args()
    if args.repos < 1 or args.repos > 2_000_000:
        ap.error("--repos must be 1..2000000")
    entries = generate(args.out_dir, args.repos, args.v1_fraction, args.tags, args.subdirs, args.seed,
                       args.protected_fraction, args.manifest)
    v1 = sum(1 for e in entries if e["version"] == 1)
    print("wrote %d repos (%d v4, %d v1) to %s" % (len(entries), len(entries) - v1, v1, args.out_dir),
          file=sys.stderr)


if __name__ == "__main__":
    main()
