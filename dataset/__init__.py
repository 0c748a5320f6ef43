"""The bundled dataset's sources: curated data files and the build that replays them (not installed).

The built log ships in the ``timeline`` package, as ``timeline/dataset/bundled.jsonl``.
"""
