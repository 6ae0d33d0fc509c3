#!/usr/bin/env python3
"""Write the small data-set fixtures for tests/datasets.rs to tests/fixtures/datasets/.

Run from the repository root:

    /work/venv/bin/python scripts/make_dataset_fixtures.py

CI never runs this; the files it writes are committed. The expected values
are worked out by hand in tests/datasets.rs, so keep the two in step.
Malformed inputs (truncated files, lying headers) are made by the tests
themselves in a temporary folder.
"""

import gzip
import os
import struct

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "datasets")


def p(name):
    return os.path.join(OUT, name)


def ragged(rows):
    """An object array of int lists, as Keras stores imdb/reuters sequences."""
    arr = np.empty(len(rows), dtype=object)
    for i, r in enumerate(rows):
        arr[i] = list(r)
    return arr


def imdb():
    # Word indices as in the raw cache: 1 = most frequent word.
    x_train = ragged([[1, 5, 2], [3, 3, 7, 9], [4]])
    y_train = np.array([0, 1, 1], dtype=np.int64)
    x_test = ragged([[2, 8], [6, 1, 1, 1, 1]])
    y_test = np.array([1, 0], dtype=np.int64)
    np.savez(p("imdb_tiny.npz"), x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


def reuters():
    x = ragged([[1, 2], [3], [4, 4, 4], [5, 1], [2, 2, 2, 2]])
    y = np.array([3, 1, 4, 0, 2], dtype=np.int64)
    np.savez(p("reuters_tiny.npz"), x=x, y=y)


def idx_bytes(arr, code):
    head = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def idx():
    # 3 images of 4 rows x 5 columns; pixel = 5 (16 n + 5 r + c): n=2,r=3,c=4 -> 255.
    n, r, c = np.meshgrid(np.arange(3), np.arange(4), np.arange(5), indexing="ij")
    images = (5 * (16 * n + 5 * r + c)).astype(np.uint8)
    assert images[2, 3, 4] == 255
    labels = np.array([7, 0, 9], dtype=np.uint8)
    with open(p("tiny-images-idx3-ubyte"), "wb") as f:
        f.write(idx_bytes(images, 0x08))
    with open(p("tiny-labels-idx1-ubyte"), "wb") as f:
        f.write(idx_bytes(labels, 0x08))
    with open(p("tiny-images-idx3-ubyte.gz"), "wb") as f:
        f.write(gzip.compress(idx_bytes(images, 0x08), mtime=0))


TS = """# A toy multivariate, variable-length problem written for the tests.
@problemName Toy
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength false
@classLabel true a b c
@data
1,2,3:4,5,6:b
7,8:9,10:a

1.5,?,2.5,3.5:0,0,0,1:c
"""

CSV = """time,temp,load
0,10,1.5
1,12,2.5
2,"14",3.5
3,16,4.5

4,18,5.5
5,20,6.5
"""


def text():
    with open(p("toy.ts"), "w") as f:
        f.write(TS)
    with open(p("series.csv"), "w") as f:
        f.write(CSV)
    with open(p("noheader.csv"), "w") as f:
        f.write("1;2\n3;4\n5;6\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    imdb()
    reuters()
    idx()
    text()


if __name__ == "__main__":
    main()
