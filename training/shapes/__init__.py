"""The shapes world: a synthetic 64x64 world of circles, squares and triangles that the miniature Tar is trained and
evaluated on. See docs/shapes-world.md.

    from shapes import scene, render, language, dataset
    rec = dataset.example(seed)            # one typed training record (understand / generate / edit / multiturn)
    img = render.render(scene.Scene.from_json(rec["scene"]))   # uint8 array (64, 64, 3)
"""
