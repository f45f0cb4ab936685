#!/usr/bin/env python3
"""JSON written by Python protobuf (upb), for json2grpc to read back (`make interop`).

Usage: .venv/bin/python scripts/upb-interop.py OUT_DIR [BENCH_DIR]

Loads the peer benchmark's descriptor set (BENCH_DIR/bench.pb, made by protoc; default
filter/testdata/bench), decodes each BENCH_DIR/{small,medium,large}.binpb and writes it with
`json_format.MessageToJson` in several settings as OUT_DIR/<payload>.<setting>.json. The Rust
test filter/tests/upb_interop.rs (run with UPB_JSON_DIR=OUT_DIR) parses each file with
json2grpc and checks it is the message of the .binpb.
"""
import inspect
import pathlib
import sys

import google.protobuf
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.internal import api_implementation

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAYLOADS = {"small": "bench.v1.Order", "medium": "bench.v1.Order", "large": "bench.v1.BulkOrders"}

# MessageToJson keyword arguments per setting (its default prints with indent=2).
SETTINGS = {
    "default": {},
    "compact": {"indent": None},
    "proto_names": {"preserving_proto_field_name": True, "indent": None},
    "proto_names_indented": {"preserving_proto_field_name": True},
    "enum_ints": {"use_integers_for_enums": True, "indent": None},
    "all_fields": {"always_print_fields_with_no_presence": True, "indent": None},
    "sorted_unicode": {"sort_keys": True, "ensure_ascii": False, "indent": 4},
    "int64_unquoted": {"unquote_int64_if_possible": True, "indent": None},
}


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    out = pathlib.Path(sys.argv[1])
    bench = pathlib.Path(sys.argv[2]) if len(sys.argv) == 3 else ROOT / "filter" / "testdata" / "bench"
    out.mkdir(parents=True, exist_ok=True)

    fds = descriptor_pb2.FileDescriptorSet.FromString((bench / "bench.pb").read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:  # protoc --include_imports lists dependencies first
        pool.Add(f)

    supported = inspect.signature(json_format.MessageToJson).parameters
    written = 0
    for payload, type_name in PAYLOADS.items():
        cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(type_name))
        message = cls.FromString((bench / f"{payload}.binpb").read_bytes())
        for setting, kwargs in SETTINGS.items():
            if not set(kwargs) <= set(supported):
                print(f"upb-interop: {setting} not supported by this protobuf, skipped", file=sys.stderr)
                continue
            text = json_format.MessageToJson(message, **kwargs)
            # Sanity: Python reads its own output back to the same message.
            if json_format.Parse(text, cls()) != message:
                print(f"upb-interop: {payload}.{setting}: Python does not round-trip", file=sys.stderr)
                return 1
            (out / f"{payload}.{setting}.json").write_text(text, encoding="utf-8")
            written += 1
    print(f"upb-interop: wrote {written} JSON files to {out} "
          f"(protobuf {google.protobuf.__version__}, {api_implementation.Type()})")
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
