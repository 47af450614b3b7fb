"""The label forms a dataset may come with: wnid strings in parquet, a renamed column (which says
what is accepted), a labels csv that starts with a UTF-8 byte-order mark."""

from __future__ import annotations

import pytest

from support import TEN, class_colour, make_flat, png_bytes, val_name
from vitbench.catalog import imagenet_synsets
from vitbench.data.datasets import DatasetLayoutError, open_dataset

SYN = imagenet_synsets()


pytestmark = pytest.mark.usefixtures("hf_caches_in_tmp")


def test_wnid_string_labels_in_parquet_are_accepted(tmp_path):
    import datasets

    folder = tmp_path / "pq"
    folder.mkdir()
    datasets.Dataset.from_dict(
        {"image": [{"bytes": png_bytes(class_colour(c)), "path": val_name(n)} for n, c in ((1, 0), (2, 5))],
         "label": [SYN[0], SYN[5]]},
        features=datasets.Features({"image": datasets.Image(), "label": datasets.Value("string")}),
    ).to_parquet(str(folder / "validation-00000-of-00001.parquet"))
    assert open_dataset("imagenet", override=str(folder)).targets == [0, 5]


def test_wrong_label_strings_and_renamed_columns_say_what_is_accepted(tmp_path):
    import datasets

    def write(name, cols, features):
        path = tmp_path / name
        datasets.Dataset.from_dict(cols, features=datasets.Features(features)).to_parquet(str(path))
        return path

    img = [{"bytes": png_bytes((1, 2, 3)), "path": val_name(1)}]
    bad = write("bad.parquet", {"image": img, "label": ["tench"]},
                {"image": datasets.Image(), "label": datasets.Value("string")})
    with pytest.raises(DatasetLayoutError, match=r"'?tench'? .*accepted labels are class indices.*wnid strings"):
        open_dataset("imagenet", override=str(bad))
    renamed = write("renamed.parquet", {"picture": img, "target": [0]},
                    {"picture": datasets.Image(), "target": datasets.Value("int64")})
    with pytest.raises(DatasetLayoutError, match=r"found columns \['picture', 'target'\].*image, img, jpg.*label, labels, cls"):
        open_dataset("imagenet", override=str(renamed))


def test_labels_csv_with_a_utf8_bom(dummy, tmp_path):
    root = make_flat(tmp_path / "data" / "imagenet", [(n, c, c) for n, c, _ in TEN[:3]])
    for name in ("labels.csv",):
        text = (root / name).read_text(encoding="utf-8")
        (root / name).write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert open_dataset("imagenet", data_root=tmp_path / "data").targets == [0, 1, 2]
    (root / "labels.csv").unlink()
    rows = "ImageId,PredictionString\n" + "".join(f"{val_name(n)[:-5]},{SYN[c]} 1 2 3 4\n" for n, c, _ in TEN[:3])
    (root / "LOC_val_solution.csv").write_bytes(b"\xef\xbb\xbf" + rows.encode("utf-8"))
    assert open_dataset("imagenet", data_root=tmp_path / "data").targets == [0, 1, 2]

