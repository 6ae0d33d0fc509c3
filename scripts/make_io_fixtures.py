#!/usr/bin/env python3
"""Write the NumPy .npy/.npz fixtures for tests/io.rs to tests/fixtures/io/.

Run from the repository root:

    /work/venv/bin/python scripts/make_io_fixtures.py

CI never runs this; the files it writes are committed.  The expected values
are repeated by hand in tests/io.rs, so keep the two in step.
"""

import io
import os
import pickle
import zipfile

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "io")


def p(name):
    return os.path.join(OUT, name)


def npy_bytes(arr, version=None):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, version=version, allow_pickle=True)
    return buf.getvalue()


def object_npy_bytes(arr, protocol):
    """An object-array .npy whose pickle uses the given protocol."""
    header = {"descr": "|O", "fortran_order": False, "shape": arr.shape}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    pickle.dump(arr, buf, protocol=protocol)
    return buf.getvalue()


def member(name):
    """A zip member with a fixed timestamp, so the fixtures are reproducible."""
    return zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))


def main():
    os.makedirs(OUT, exist_ok=True)
    base = np.arange(12, dtype=np.float64).reshape(3, 4) * 0.5 - 1.25
    np.save(p("f32.npy"), base.astype(np.float32))
    np.save(p("f64.npy"), base)
    np.save(p("f16.npy"), base.astype(np.float16))
    ints = np.array([[0, 1, -2], [3, -16777216, 16777216]], dtype=np.int64)
    np.save(p("i32.npy"), ints.astype(np.int32))
    np.save(p("i64.npy"), ints)
    np.save(p("i8.npy"), np.array([-128, 0, 127], dtype=np.int8))
    np.save(p("u8.npy"), np.array([0, 1, 255], dtype=np.uint8))
    np.save(p("u16.npy"), np.array([0, 65535], dtype=np.uint16))
    np.save(p("bool.npy"), np.array([True, False, True, True]))
    np.save(p("big_i64.npy"), np.array([1, 16777217], dtype=np.int64))
    np.save(p("be_f4.npy"), base.astype(">f4"))
    np.save(p("scalar.npy"), np.float32(3.5))
    np.save(p("empty.npy"), np.zeros((0, 3), dtype=np.float32))
    np.save(p("fortran.npy"), np.asfortranarray(base.astype(np.float32)))
    with open(p("v2.npy"), "wb") as f:
        f.write(npy_bytes(base.astype(np.float32), version=(2, 0)))
    with open(p("v3.npy"), "wb") as f:
        f.write(npy_bytes(base.astype(np.float32), version=(3, 0)))
    np.save(p("object.npy"), np.array([[1, 2], [3]], dtype=object), allow_pickle=True)

    # Keras-style dataset cache: object arrays of int lists of different lengths.
    shared = [7, 8, 9]
    x_train = np.array([[1, 14, 22, 16], [1, 194, 70000], [], [2**31 + 5, -3, 255, 256]], dtype=object)
    y_train = np.array([1, 0, 0, 1], dtype=np.int64)
    x_test = np.array([shared, [4, 2**40], shared], dtype=object)  # `shared` twice: pickle memo
    y_test = np.array([0, 1, 1], dtype=np.int64)
    arrays = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    np.savez(p("keras.npz"), **arrays)
    np.savez_compressed(p("keras_compressed.npz"), **arrays)

    # The same object array pickled with every protocol numpy may meet, plus a
    # 2-D object array (lists of equal length) and a plain float member.
    seqs = np.array([[5, 6, 7], [70000], [-1, 0]], dtype=object)
    with zipfile.ZipFile(p("pickles.npz"), "w", zipfile.ZIP_STORED) as z:
        for proto in (2, 3, 4, 5):
            z.writestr(member(f"x_p{proto}.npy"), object_npy_bytes(seqs, proto))
        z.writestr(member("x_equal.npy"), object_npy_bytes(np.array([[1, 2], [3, 4]], dtype=object), 3))
        z.writestr(member("w.npy"), npy_bytes(base.astype(np.float32)))

    # An object array holding something other than int lists.
    with zipfile.ZipFile(p("bad_object.npz"), "w", zipfile.ZIP_STORED) as z:
        z.writestr(member("s.npy"), object_npy_bytes(np.array(["a", {"k": 1}], dtype=object), 3))


if __name__ == "__main__":
    main()
