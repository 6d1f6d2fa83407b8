"""Small synthetic archives in each benchmark's upstream format (real folder structure and class counts, a few tiny
images per class), and a local HTTP server that serves them, for the ``vlprompt data prepare`` tests."""

from __future__ import annotations

import io
import tarfile
import threading
import zipfile
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
from PIL import Image

Files = Dict[str, bytes]


@lru_cache(maxsize=None)
def jpeg(label: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), ((label * 37) % 256, (label * 91) % 256, (label * 53) % 256)).save(buf, "JPEG")
    return buf.getvalue()


def tar(files: Files, mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zipped(files: Files) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def mat(**arrays) -> bytes:
    from scipy.io import savemat

    buf = io.BytesIO()
    savemat(buf, arrays)
    return buf.getvalue()


def lines(rows: List[str]) -> bytes:
    return ("\n".join(rows) + "\n").encode()


def class_folders(prefix: str, classes: List[str], per_class: int = 4, ext: str = "jpg") -> Files:
    return {f"{prefix}{c}/{c}_{i:04d}.{ext}": jpeg(k) for k, c in enumerate(classes) for i in range(per_class)}


def dtd() -> Files:
    classes = [f"texture{k:02d}" for k in range(47)]
    files = class_folders("dtd/images/", classes)
    files["dtd/labels/labels_joint_anno.txt"] = b""
    return {"dtd-r1.0.1.tar.gz": tar(files)}


def eurosat() -> Files:
    classes = ["AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial", "Pasture", "PermanentCrop"]
    classes += ["Residential", "River", "SeaLake"]
    return {"EuroSAT.zip": zipped(class_folders("2750/", classes))}


def oxford_pets() -> Files:
    images, trainval, test = {}, [], []
    for k in range(37):
        for i in range(4):
            name = f"Breed{k:02d}_{i}"
            images[f"images/{name}.jpg"] = jpeg(k)
            (test if i == 3 else trainval).append(f"{name} {k + 1} 1 {k + 1}")
    annotations = {"annotations/trainval.txt": lines(trainval), "annotations/test.txt": lines(test)}
    return {"images.tar.gz": tar(images), "annotations.tar.gz": tar(annotations)}


def oxford_flowers() -> Files:
    labels = [k + 1 for k in range(102) for _ in range(4)]
    images = {f"jpg/image_{i + 1:05d}.jpg": jpeg(label) for i, label in enumerate(labels)}
    return {
        "102flowers.tgz": tar(images),
        "imagelabels.mat": mat(labels=np.array([labels], dtype=np.uint8)),
        "setid.mat": mat(trnid=np.array([[1]]), valid=np.array([[2]]), tstid=np.array([[3]])),
    }


def food101() -> Files:
    classes = [f"dish_{k:03d}" for k in range(101)]
    files = class_folders("food-101/images/", classes)
    files["food-101/meta/classes.txt"] = lines(classes)
    return {"food-101.tar.gz": tar(files)}


def caltech101() -> Files:
    classes = [f"object{k:03d}" for k in range(100)] + ["BACKGROUND_Google", "Faces_easy"]
    inner = tar(class_folders("101_ObjectCategories/", classes))
    outer = {"caltech-101/101_ObjectCategories.tar.gz": inner, "caltech-101/Annotations.tar": tar({}, "w")}
    return {"caltech-101.zip": zipped(outer)}


def sun397() -> Files:
    classes = [f"/{chr(97 + k % 26)}/scene{k:03d}" for k in range(397)]
    images, train, test = {}, [], []
    for k, c in enumerate(classes):
        for i in range(4):
            images[f"SUN397{c}/sun_{i}.jpg"] = jpeg(k)
            (test if i == 3 else train).append(f"{c}/sun_{i}.jpg")
    images["SUN397/ClassName.txt"] = lines(classes)
    partitions = {"ClassName.txt": lines(classes), "Training_01.txt": lines(train), "Testing_01.txt": lines(test)}
    return {"SUN397.tar.gz": tar(images), "Partitions.zip": zipped(partitions)}


def fgvc_aircraft() -> Files:
    variants = [f"Jet-{k:03d}" for k in range(100)]
    files = {"fgvc-aircraft-2013b/data/variants.txt": lines(variants)}
    for s, split in enumerate(("train", "val", "test")):
        ids = [f"{s}{k:06d}" for k in range(100)]
        files[f"fgvc-aircraft-2013b/data/images_variant_{split}.txt"] = lines(
            [f"{i} {v}" for i, v in zip(ids, variants)]
        )
        files.update({f"fgvc-aircraft-2013b/data/images/{i}.jpg": jpeg(k) for k, i in enumerate(ids)})
    return {"fgvc-aircraft-2013b.tar.gz": tar(files)}


def _car_annotations(rows) -> bytes:
    records = np.empty((1, len(rows)), dtype=[("fname", object), ("class", object)])
    for i, (fname, label) in enumerate(rows):
        records[0, i] = (np.array([fname]), np.array([[label + 1]], dtype=np.uint8))
    return mat(annotations=records)


def stanford_cars() -> Files:
    meta = np.empty((1, 196), dtype=object)
    for k in range(196):
        meta[0, k] = np.array([f"Make Model{k} 2012"])
    train = [(f"{i + 1:05d}.jpg", i // 3) for i in range(196 * 3)]
    test = [(f"{i + 1:05d}.jpg", i) for i in range(196)]
    return {
        "cars_train.tgz": tar({f"cars_train/{f}": jpeg(k) for f, k in train}),
        "cars_test.tgz": tar({f"cars_test/{f}": jpeg(k) for f, k in test}),
        "car_devkit.tgz": tar(
            {"devkit/cars_meta.mat": mat(class_names=meta), "devkit/cars_train_annos.mat": _car_annotations(train)}
        ),
        "cars_test_annos_withlabels.mat": _car_annotations(test),
    }


def tiny_avi(label: int, frames: int = 5) -> bytes:
    """A tiny MPEG-4 AVI whose frame ``i`` is filled with grey level ``10 * i + label % 50``."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=5)
        stream.width = stream.height = 16
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(
                np.full((16, 16, 3), 40 * i + label % 40, dtype=np.uint8), format="rgb24"
            )
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


UCF_ACTIONS = [f"Action{chr(65 + k // 26)}{chr(65 + k % 26)}Move" for k in range(101)]


def ucf101_videos() -> Files:
    """``UCF-101/<Action>/v_<Action>_gXX_cYY.avi`` (the content of UCF101.rar, which Python cannot write)."""
    return {f"UCF-101/{a}/v_{a}_g{i + 1:02d}_c01.avi": tiny_avi(k) for k, a in enumerate(UCF_ACTIONS) for i in range(4)}


def ucf101_lists() -> Files:
    classes = [f"{k + 1} {a}" for k, a in enumerate(UCF_ACTIONS)]
    train = [f"{a}/v_{a}_g{i + 1:02d}_c01.avi {k + 1}" for k, a in enumerate(UCF_ACTIONS) for i in range(3)]
    test = [f"{a}/v_{a}_g04_c01.avi" for a in UCF_ACTIONS]
    files = {"ucfTrainTestlist/classInd.txt": lines(classes), "ucfTrainTestlist/trainlist01.txt": lines(train)}
    files["ucfTrainTestlist/testlist01.txt"] = lines(test)
    return {"UCF101TrainTestSplits-RecognitionTask.zip": zipped(files)}


def imagenet_wnids() -> List[str]:
    from vlprompt.data.published import shipped

    return [line.split(" ", 1)[0] for line in shipped("imagenet_classnames.txt").decode().splitlines()]


def imagenet() -> Files:
    wnids = imagenet_wnids()
    train = {f"{w}.tar": tar({f"{w}_1.JPEG": jpeg(k)}, "w") for k, w in enumerate(wnids)}
    order = list(range(1000))[::-1]  # val images are not in class order
    val = {f"ILSVRC2012_val_{i + 1:08d}.JPEG": jpeg(k) for i, k in enumerate(order)}
    synsets = np.empty((1, 1001), dtype=[("ILSVRC2012_ID", object), ("WNID", object), ("num_children", object)])
    for k, w in enumerate(wnids):
        synsets[0, k] = (np.array([[k + 1]]), np.array([w]), np.array([[0]]))
    synsets[0, 1000] = (np.array([[1001]]), np.array(["n00001740"]), np.array([[3]]))  # an inner node
    devkit = {
        "ILSVRC2012_devkit_t12/data/meta.mat": mat(synsets=synsets),
        "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt": lines([str(k + 1) for k in order]),
    }
    return {
        "ILSVRC2012_img_train.tar": tar(train, "w"),
        "ILSVRC2012_img_val.tar": tar(val, "w"),
        "ILSVRC2012_devkit_t12.tar.gz": tar(devkit),
    }


def imagenetv2() -> Files:
    files = {f"imagenetv2-matched-frequency-format-val/{k}/img{k}.jpeg": jpeg(k) for k in range(1000)}
    return {"imagenetv2-matched-frequency.tar.gz": tar(files)}


def imagenet_sketch() -> Files:
    return {
        "ImageNet-Sketch.zip": zipped({f"sketch/{w}/sketch_{k}.JPEG": jpeg(k) for k, w in enumerate(imagenet_wnids())})
    }


def _two_hundred(folder: str) -> Files:
    wnids = imagenet_wnids()[::5]
    return {f"{folder}/{w}/{k}.jpg": jpeg(k) for k, w in enumerate(wnids)}


def imagenet_a() -> Files:
    return {"imagenet-a.tar": tar(_two_hundred("imagenet-a"), "w")}


def imagenet_r() -> Files:
    return {"imagenet-r.tar": tar(_two_hundred("imagenet-r"), "w")}


#: dataset -> builder of {upstream file name: content}
UPSTREAM: Dict[str, Callable[[], Files]] = {
    "caltech101": caltech101,
    "oxford_pets": oxford_pets,
    "stanford_cars": stanford_cars,
    "oxford_flowers": oxford_flowers,
    "food101": food101,
    "sun397": sun397,
    "dtd": dtd,
    "eurosat": eurosat,
    "fgvc_aircraft": fgvc_aircraft,
    "imagenet": imagenet,
    "imagenetv2": imagenetv2,
    "imagenet_sketch": imagenet_sketch,
    "imagenet_a": imagenet_a,
    "imagenet_r": imagenet_r,
}


class ArchiveServer:
    """Serves ``files`` (name -> bytes) on 127.0.0.1 with HTTP Range support, in daemon threads; records each
    request's ``(path, Range header)``; ``cut[name] = n`` sends only the first ``n`` bytes once (then drops the
    connection). Use as a context manager: the server stops itself on exit."""

    def __init__(self, files: Files):
        self.files, self.requests, self.cut = dict(files), [], {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 10

            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.lstrip("/")
                server.requests.append((name, self.headers.get("Range")))
                data = server.files.get(name)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes=") and rng.endswith("-"):
                    start = int(rng[6:-1])
                    if start >= len(data):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if name in server.cut:
                    body = body[: server.cut.pop(name)]
                    self.close_connection = True
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def __enter__(self) -> "ArchiveServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def write_files(folder: Path, files: Files) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder
