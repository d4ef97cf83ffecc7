#!/usr/bin/env python3
"""Extracts the input-validation subset of botocore's SageMaker service model.

Writes src/api/sagemaker/shapes.json: for the control-plane operations inferd serves, the closure of
their input shapes, keeping only what server-side validation needs (type, required, member shape
names, list member / map key and value shapes, min, max, pattern, enum). Documentation is dropped.

The output is committed; the build embeds it and never runs Python. Re-run after a botocore upgrade:

    python3 tools/gen_sagemaker_shapes.py            # writes src/api/sagemaker/shapes.json
    python3 tools/gen_sagemaker_shapes.py --check    # exits 1 if the committed file is stale
"""

import argparse
import gzip
import json
import os
import sys

OPERATIONS = [
    "CreateModel", "DescribeModel", "ListModels", "DeleteModel",
    "CreateEndpointConfig", "DescribeEndpointConfig", "ListEndpointConfigs", "DeleteEndpointConfig",
    "CreateEndpoint", "DescribeEndpoint", "ListEndpoints", "UpdateEndpoint",
    "UpdateEndpointWeightsAndCapacities", "DeleteEndpoint",
    "AddTags", "DeleteTags", "ListTags",
]

# Shape fields kept as they are; member/key/value are reduced to the referenced shape name.
SCALAR_FIELDS = ("type", "required", "min", "max", "pattern", "enum")
REF_FIELDS = ("member", "key", "value")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUTPUT = os.path.join(REPO_ROOT, "src", "api", "sagemaker", "shapes.json")


def load_model():
    import botocore  # imported here so --help works without botocore
    path = os.path.join(os.path.dirname(botocore.__file__),
                        "data", "sagemaker", "2017-07-24", "service-2.json.gz")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return botocore.__version__, json.load(f)


def reduce_shape(shape):
    out = {}
    for field in SCALAR_FIELDS:
        if field in shape:
            out[field] = shape[field]
    for field in REF_FIELDS:
        if field in shape:
            out[field] = shape[field]["shape"]
    if "members" in shape:
        out["members"] = {name: m["shape"] for name, m in shape["members"].items()}
    return out


def extract(model):
    all_shapes = model["shapes"]
    operations = {}
    kept = {}

    def visit(name):
        if name in kept:
            return
        shape = all_shapes[name]
        kept[name] = reduce_shape(shape)
        for field in REF_FIELDS:
            if field in shape:
                visit(shape[field]["shape"])
        for member in shape.get("members", {}).values():
            visit(member["shape"])

    for op in OPERATIONS:
        input_ref = model["operations"][op].get("input")
        if input_ref is None:
            sys.exit(f"operation {op} has no input shape")
        operations[op] = input_ref["shape"]
        visit(input_ref["shape"])
    return operations, kept


def render(version, operations, shapes, known):
    # One shape per line: compact, yet a model upgrade shows up as a readable diff.
    dump = lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    lines = ['{"source":' + dump(f"botocore {version} sagemaker 2017-07-24") + ",",
             '"operations":' + dump(operations) + ",",
             # Every operation SageMaker has: the rest are answered NotImplemented, not unknown.
             '"known_operations":' + dump(known) + ",", '"shapes":{']
    names = sorted(shapes)
    for i, name in enumerate(names):
        sep = "," if i + 1 < len(names) else ""
        lines.append(dump(name) + ":" + dump(shapes[name]) + sep)
    lines.append("}}")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default=DEFAULT_OUTPUT)
    parser.add_argument("--check", action="store_true",
                        help="compare with the existing output instead of writing it")
    args = parser.parse_args()

    version, model = load_model()
    operations, shapes = extract(model)
    text = render(version, operations, shapes, sorted(model["operations"]))
    json.loads(text)  # sanity: the output must be valid JSON

    if args.check:
        try:
            with open(args.output, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current != text:
            print(f"{args.output} is stale; re-run {sys.argv[0]}", file=sys.stderr)
            return 1
        return 0
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {args.output}: {len(operations)} operations, {len(shapes)} shapes, "
          f"{len(text)} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
