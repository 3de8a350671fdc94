"""``python -m flame.contact_sheet``: the stand-in head's panels in one PNG that reads
at a glance."""

from __future__ import annotations

from PIL import Image

import flame
from _common.figures import MIN_SHORT_SIDE_PX
from flame.contact_sheet import main, panels


def test_the_contact_sheet_has_a_panel_each_and_reads_at_a_glance(tmp_path, capsys):
    model = flame.load_model("bundled")
    assert len(panels(model)) >= 6
    out = tmp_path / "sheet.png"
    assert main(["--output", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    image = Image.open(out)
    assert min(image.size) >= MIN_SHORT_SIDE_PX
    assert len(set(image.convert("L").getdata())) > 50  # drawn, not blank
