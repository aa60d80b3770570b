"""Building the Blender scene from a reconstruction: collection, camera, meshes, materials, USD cache, depth points.

The footage is `footage.py`, the visibility and shape keys `keyframes.py`, import names and report
texts `import_report.py`. Format reading is `c2f_core.io.recon_output` (bundled as a wheel); the
axis conversion is `c2f_core.geometry.axes`. Everything in Blender is in metres, Z up, with the
capture camera at the origin looking along +Y (see `c2f_core.geometry.axes`).
"""

from __future__ import annotations

import re
from pathlib import Path

import bpy
import numpy as np

from .animation_import import import_animation
from .footage import add_background_sequence, add_footage_to_render, footage_file
from .import_report import (
    ImportResult,
    choose_usd_cache,
    describe_failures,
    describe_scene_changes,
    import_name,
    missing_frames,
    scene_setup,
)
from .keyframes import key_shape_values, key_visibility
from .layer_collections import importing_into
from .take_depth import read_depth_png

PARTS = ("hand", "object")
MATERIAL_NAMES = {"hand": "C2F Hand", "object": "C2F Object"}
MATERIAL_COLORS = {"hand": (0.80, 0.52, 0.42, 1.0), "object": (0.20, 0.45, 0.85, 1.0)}
SENSOR_WIDTH_MM = 36.0
PART_PROP = "c2f_part"
FRAME_PROP = "c2f_frame"


def core_modules():
    """Import the bundled c2f_core format code, or explain how to get it."""
    try:
        from c2f_core.geometry import axes
        from c2f_core.io import recon_output
    except ImportError as exc:
        raise ImportError(
            f"c2f_core is not available in Blender's Python ({exc}); install the add-on zip built by "
            "build_addon.py, which bundles it"
        ) from None
    return recon_output, axes


def set_camera_from_intrinsics(scene: bpy.types.Scene, camera: bpy.types.Camera, intrinsics) -> None:
    """Make `camera` and the render settings reproduce a pinhole camera, pixel for pixel.

    Convention: OpenCV intrinsics (fx, fy, cx, cy in pixels, pixel (u, v) centred at (u, v));
    Blender measures the frame from pixel edges, so the principal point sits at (cx + 0.5,
    cy + 0.5) from the top-left corner. With a horizontal sensor fit of width S mm and W pixels,
    fx = lens * W / S; a principal point off centre is a lens shift in units of the fitted
    width: shift_x = (W / 2 - (cx + 0.5)) / W, shift_y = ((cy + 0.5) - H / 2) * (fx / fy) / W
    (Blender's shift_y points up, image v points down). fx != fy becomes a pixel aspect ratio
    with pixel_aspect_y / pixel_aspect_x = fx / fy.
    """
    fx, fy = intrinsics.fx, intrinsics.fy
    width, height = intrinsics.width, intrinsics.height
    render = scene.render
    render.resolution_x = width
    render.resolution_y = height
    render.resolution_percentage = 100
    # Blender keeps each pixel-aspect value >= 1, so the larger side carries the ratio.
    if fx >= fy:
        render.pixel_aspect_x, render.pixel_aspect_y = 1.0, fx / fy
    else:
        render.pixel_aspect_x, render.pixel_aspect_y = fy / fx, 1.0
    camera.type = "PERSP"
    camera.sensor_fit = "HORIZONTAL"
    camera.sensor_width = SENSOR_WIDTH_MM
    camera.lens = fx * SENSOR_WIDTH_MM / width
    camera.shift_x = (width / 2 - (intrinsics.cx + 0.5)) / width
    camera.shift_y = ((intrinsics.cy + 0.5) - height / 2) * (fx / fy) / width
    camera.clip_start = 0.01
    camera.clip_end = 100.0


def ensure_material(part: str) -> bpy.types.Material:
    """The named material of `part` ("hand" or "object"), created once per file."""
    name = MATERIAL_NAMES[part]
    material = bpy.data.materials.get(name)
    if material is None:
        material = bpy.data.materials.new(name)
        color = MATERIAL_COLORS[part]
        material.diffuse_color = color  # what the viewport and Workbench show
        tree = material.node_tree
        bsdf = tree.nodes.get("Principled BSDF") if tree is not None else None
        if bsdf is not None:
            bsdf.inputs["Base Color"].default_value = color
            bsdf.inputs["Roughness"].default_value = 0.6
    return material


def build_mesh(name: str, vertices_local: np.ndarray, faces: np.ndarray) -> bpy.types.Mesh:
    """A Blender mesh from (V, 3) metres in its object's frame and (F, 3) triangle indices, built in bulk."""
    mesh = bpy.data.meshes.new(name)
    n_faces = len(faces)
    mesh.vertices.add(len(vertices_local))
    mesh.vertices.foreach_set("co", np.ascontiguousarray(vertices_local, dtype=np.float32).ravel())
    mesh.loops.add(3 * n_faces)
    mesh.loops.foreach_set("vertex_index", np.ascontiguousarray(faces, dtype=np.int32).ravel())
    mesh.polygons.add(n_faces)
    mesh.polygons.foreach_set("loop_start", np.arange(0, 3 * n_faces, 3, dtype=np.int32))
    mesh.update()
    if n_faces:
        mesh.shade_smooth()
    return mesh


def validate_mesh(mesh: bpy.types.Mesh) -> bool:
    """Let Blender fix invalid geometry (faces repeating a vertex, duplicate faces); True if it changed any.

    c2f_core writes clean meshes; this guards against files from older versions or other tools,
    which Blender's glTF exporter would call "not valid". Vertices are never removed, so shape
    keys added afterwards still match.
    """
    return bool(mesh.validate(verbose=False))


def _new_collection(context: bpy.types.Context, name: str) -> bpy.types.Collection:
    collection = bpy.data.collections.new(name)
    context.scene.collection.children.link(collection)
    return collection


def _link(collection: bpy.types.Collection, ob: bpy.types.Object) -> bpy.types.Object:
    collection.objects.link(ob)
    return ob


def _set_scene_timing(scene: bpy.types.Scene, first: int, last: int, fps: float) -> None:
    scene.frame_start = first
    scene.frame_end = last
    rounded = max(1, round(fps))
    scene.render.fps = rounded
    scene.render.fps_base = rounded / fps


def import_reconstruction(
    context: bpy.types.Context,
    out_dir: str | Path,
    use_usd: bool | None = None,
    load_background: bool = True,
    footage_in_render: bool = True,
    color_file: str | Path | None = None,
    use_animation: bool | None = None,
) -> ImportResult:
    """Put the reconstruction in `out_dir` into the scene: a collection with camera, hand and object.

    The collection and its objects are named after the take; when the file already has an
    import of that name, "take (2)", "take (3)", ... (`import_name`). The scene's camera, frame
    range, render size and frame rate become the take's; `ImportResult.scene_changes` says which
    changed.

    Args:
        context: Blender's context (its scene receives the collection, camera and frame range).
        out_dir: output folder of `c2f reconstruct`.
        use_usd: True: import take.usdc as one Mesh Sequence Cache per part; False: one object per
            frame and part; None: choose by the frame count (`choose_usd_cache`). A single frame
            has no cache and always gets objects.
        load_background: show the footage behind the camera in the viewport.
        footage_in_render: lay the footage behind the meshes in renders (`add_footage_to_render`).
        color_file: the footage's first image when neither the take's color/ nor the colour image
            recorded in reconstruction.json is found (`footage_file`).
        use_animation: True: import the animated take (OUT/animation/take.glb: a hand armature and
            the fused object, keyed); False: the per-frame meshes; None: the animated take when the
            folder has one, the sequence more than one frame and `use_usd` is None.

    Raises:
        C2FError: (from c2f_core) when the folder is not a complete c2f output, or `use_usd` is set
            and a sequence's folder has no take.usdc.
    """
    recon_output, axes = core_modules()
    from c2f_core.errors import C2FError

    recon = recon_output.read_reconstruction(out_dir)
    if not recon.frames:
        reasons = f": {describe_failures(recon.failed)}" if recon.failed else ""
        raise C2FError(f"reconstruction {recon.root} has no successful frame to import{reasons}")
    frames = list(recon.frames)
    automatic = use_usd is None
    from c2f_core.io import animation_output

    animated = animation_output.has_animation(recon.root)
    if use_animation is None:
        use_animation = automatic and animated and len(frames) > 1
    if use_animation and not animated:
        raise C2FError(
            f"{recon.root} has no animated result ({animation_output.ANIMATION_DIR}/take.glb); make one with "
            f"'c2f animate {recon.root}', or import the per-frame meshes"
        )
    if use_animation:
        use_usd = False
    elif automatic:
        use_usd = choose_usd_cache(len(frames), recon.usd is not None)
    if use_usd and recon.usd is None and len(frames) == 1:
        use_usd = False  # a single frame has no mesh cache (c2f reconstruct writes one for sequences)
    if use_usd and recon.usd is None:
        raise C2FError(
            f"{recon.root} has no {recon_output.USD_NAME}; import with Meshes: Per-Frame Objects (or "
            "Automatic), or rerun c2f reconstruct on the take"
        )
    scene = context.scene
    before = scene_setup(scene)
    first, last = recon.frame_range
    name = import_name(recon.name)
    collection = _new_collection(context, name)
    collection["c2f_out"] = str(recon.root.resolve())
    if recon.take is not None:
        collection["c2f_take"] = str(recon.take)
        collection["c2f_depth_lag"] = recon.depth_lag

    camera_data = bpy.data.cameras.new(f"{name} camera")
    set_camera_from_intrinsics(scene, camera_data, recon.intrinsics)
    camera = _link(collection, bpy.data.objects.new(camera_data.name, camera_data))
    camera.rotation_euler = axes.BLENDER_CAMERA_EULER_XYZ
    camera["c2f_intrinsics"] = recon.intrinsics.to_dict()
    scene.camera = camera
    _set_scene_timing(scene, first, last, recon.fps)
    result = ImportResult(
        collection=collection,
        camera=camera,
        failed=dict(recon.failed),
        missing=missing_frames(recon),
        take_name=recon.name,
        n_frames=len(frames),
        used_usd=use_usd,
        used_animation=use_animation,
        automatic=automatic,
    )
    footage, result.footage_note = footage_file(recon, first, color_file)
    result.footage = footage
    if footage is not None and load_background:
        add_background_sequence(camera_data, footage, first, last)
        result.background = True
    if footage is not None and footage_in_render:
        result.footage_problem = add_footage_to_render(scene, footage, first, last)
        result.footage_in_render = not result.footage_problem

    if use_animation:
        materials = {part: ensure_material(part) for part in PARTS}
        glb = animation_output.animation_files(recon.root).glb
        result.objects, result.armature = import_animation(context, glb, collection, name, materials)
    elif use_usd:
        result.objects = _import_usd_cache(context, recon, collection, name)
    else:
        result.objects, result.repaired = _import_frame_meshes(
            recon, collection, frames, name, recon_output, axes
        )
    scene.frame_set(scene.frame_current if first <= scene.frame_current <= last else first)
    result.scene_changes = describe_scene_changes(before, scene_setup(scene))
    return result


def _fixed_hand_topology(meshes, recon_output) -> bool:
    """True when every frame's hand is the fitted open hand with the same faces (one object can hold them)."""
    if len(meshes) < 2 or any(m.hand_mesh != recon_output.HAND_MESH_FIT for m in meshes):
        return False
    first = meshes[0].hand_faces
    return all(
        len(m.hand_vertices) == len(meshes[0].hand_vertices) and np.array_equal(m.hand_faces, first)
        for m in meshes
    )


def _shape_keyed_hand(
    name: str, meshes, frames: list[int], axes, action: bpy.types.Action
) -> tuple[bpy.types.Object, bool]:
    """One hand object whose shape keys hold every frame's fitted hand, keyed to show each at its frame.

    Its origin is the centre of the box around the hand in all frames (the mesh and every shape key
    are offset by it), so the animated hand turns about the middle of where it moves.

    Returns:
        The object, and whether `validate_mesh` had to fix its mesh.
    """
    from c2f_core.io.usd_take import mesh_centre

    vertices = [axes.opencv_to_blender(frame_meshes.hand_vertices) for frame_meshes in meshes]
    centre = mesh_centre(np.concatenate(vertices))
    mesh = build_mesh(name, vertices[0] - centre, meshes[0].hand_faces)
    repaired = validate_mesh(mesh)  # before the shape keys, which copy the mesh's vertices
    ob = bpy.data.objects.new(name, mesh)
    ob.location = centre
    ob.shape_key_add(name="Basis", from_mix=False)
    names = []
    for frame, frame_vertices in zip(frames, vertices):
        block = ob.shape_key_add(name=f"frame {frame:06d}", from_mix=False)
        block.data.foreach_set("co", np.ascontiguousarray(frame_vertices - centre, dtype=np.float32).ravel())
        names.append(block.name)
    mesh.shape_keys.name = f"{name} shapes"
    key_shape_values(action, mesh.shape_keys, names, frames)
    return ob, repaired


def _import_frame_meshes(
    recon, collection, frames, name, recon_output, axes
) -> tuple[dict[str, list[bpy.types.Object]], list[str]]:
    """One object per frame and part named `name` part frame, each visible from its frame until the next result.

    Each object's origin is the centre of its mesh's bounding box (the object is placed there and
    its mesh offset, so world positions are the file's), so rotating it pivots in its middle.
    Fitted hands (``c2f reconstruct --hand fit``) share one topology: they become a single hand
    object with one shape key per frame instead, ready to subdivide, texture or export as one.

    Returns:
        part -> objects, and the names of the meshes `validate_mesh` had to fix.
    """
    from c2f_core.io.usd_take import mesh_centre

    objects: dict[str, list[bpy.types.Object]] = {part: [] for part in PARTS}
    repaired: list[str] = []
    part_collections = {}
    for part in PARTS:
        part_collections[part] = bpy.data.collections.new(f"{name} {part}")
        collection.children.link(part_collections[part])
    materials = {part: ensure_material(part) for part in PARTS}
    meshes = [recon_output.read_frame_meshes(recon, frame) for frame in frames]
    action = bpy.data.actions.new(f"{name} visibility")
    per_frame_parts = list(PARTS)
    if _fixed_hand_topology(meshes, recon_output):
        per_frame_parts = ["object"]
        ob, hand_repaired = _shape_keyed_hand(f"{name} hand", meshes, frames, axes, action)
        if hand_repaired:
            repaired.append(ob.name)
        ob.data.materials.append(materials["hand"])
        _link(part_collections["hand"], ob)
        ob[PART_PROP] = "hand"
        objects["hand"].append(ob)
    for frame, frame_meshes in zip(frames, meshes):
        for part, vertices, faces in (
            ("hand", frame_meshes.hand_vertices, frame_meshes.hand_faces),
            ("object", frame_meshes.object_vertices, frame_meshes.object_faces),
        ):
            if part not in per_frame_parts:
                continue
            object_name = f"{name} {part} {frame:06d}"
            vertices_world = axes.opencv_to_blender(vertices)
            centre = mesh_centre(vertices_world)
            mesh = build_mesh(object_name, vertices_world - centre, faces)
            if validate_mesh(mesh):
                repaired.append(object_name)
            mesh.materials.append(materials[part])
            ob = _link(part_collections[part], bpy.data.objects.new(object_name, mesh))
            ob.location = centre
            ob[PART_PROP] = part
            ob[FRAME_PROP] = frame
            objects[part].append(ob)
    for part in per_frame_parts:
        key_visibility(action, objects[part], frames)
    return objects, repaired


def _import_usd_cache(context, recon, collection, name) -> dict[str, list[bpy.types.Object]]:
    """Import take.usdc as Mesh Sequence Cache objects `name` hand/object cache into `collection`.

    The file places each part at its frame's mesh centre (a time-sampled translate, which Blender
    reads through a Transform Cache constraint) and holds the points relative to it, so each
    object's origin follows the middle of its mesh, as per-frame objects' origins do.
    """
    from c2f_core.errors import C2FError
    from c2f_core.io.usd_take import MESH_PRIMS

    before = set(bpy.data.objects)
    with importing_into(context, collection):
        outcome = bpy.ops.wm.usd_import(
            filepath=str(recon.usd),
            set_frame_range=False,
            import_materials=False,
            import_cameras=False,
            import_lights=False,
            import_subdivision=False,
            create_collection=False,
        )
    if outcome != {"FINISHED"}:
        raise C2FError(f"Blender could not import {recon.usd}")
    new_objects = [ob for ob in bpy.data.objects if ob not in before]
    objects: dict[str, list[bpy.types.Object]] = {part: [] for part in PARTS}
    prim_names = {prim.rsplit("/", 1)[-1]: part for part, prim in MESH_PRIMS.items()}
    for ob in new_objects:
        part = prim_names.get(re.sub(r"\.\d+$", "", ob.name)) if ob.type == "MESH" else None
        if part is None:
            continue
        ob.name = f"{name} {part} cache"
        ob[PART_PROP] = part
        ob.data.materials.clear()
        ob.data.materials.append(ensure_material(part))
        # The cache replaces the mesh every frame; an object-level slot keeps the material.
        ob.material_slots[0].link = "OBJECT"
        ob.material_slots[0].material = ensure_material(part)
        objects[part].append(ob)
    for part in PARTS:
        if len(objects[part]) != 1:
            raise C2FError(f"{recon.usd}: expected one {part} mesh, found {len(objects[part])}")
    return objects


def add_depth_points(
    context: bpy.types.Context, collection: bpy.types.Collection, frame: int, stride: int = 2
) -> bpy.types.Object:
    """Add the take's depth of `frame` as a point cloud (vertices only) in the camera's world.

    Raises:
        C2FError: when the collection has no take or the take has no depth for `frame`.
    """
    _, axes = core_modules()
    from c2f_core.errors import C2FError

    take = collection.get("c2f_take")
    camera = next((ob for ob in collection.objects if ob.type == "CAMERA" and "c2f_intrinsics" in ob), None)
    if not take or camera is None:
        raise C2FError(f"collection {collection.name} is not a c2f import with a take")
    # A take whose depth lags its colour was reconstructed with depth file frame + lag: show that one.
    lag = int(collection.get("c2f_depth_lag", 0))
    depth_path = Path(take) / "depth" / f"{frame + lag:06d}.png"
    if not depth_path.is_file():
        paired = f" (the take's depth lag is {lag:+d} frames)" if lag else ""
        raise C2FError(f"no depth for frame {frame}: {depth_path} not found{paired}")
    intr = camera["c2f_intrinsics"]
    depth_m = read_depth_png(depth_path).astype(np.float64)[::stride, ::stride] * float(intr["depth_scale"])
    from c2f_core.geometry.camera import depth_to_points

    K_strided = np.array(
        [
            [intr["fx"] / stride, 0, intr["cx"] / stride],
            [0, intr["fy"] / stride, intr["cy"] / stride],
            [0, 0, 1],
        ]
    )
    points_cv, _ = depth_to_points(depth_m, K_strided)
    name = f"{collection.name} depth {frame:06d}"
    mesh = build_mesh(name, axes.opencv_to_blender(points_cv).astype(np.float32), np.zeros((0, 3), np.int32))
    return _link(collection, bpy.data.objects.new(name, mesh))
