"""GENIUS interoperability: import a GENIUS/ANAC domain folder as a scenario, export a
scenario as a GENIUS domain folder.

``import_genius(folder)`` reads one domain XML and two or more profile XML files
(:mod:`negotiation.genius.reader`, parsed with defusedxml) and applies GENIUS's semantics
(:mod:`negotiation.genius.importer`); ``export_scenario(scenario)`` writes the reverse for
what GENIUS can express (:mod:`negotiation.genius.exporter`).  Every problem is a
``GeniusError`` (exit 2) naming the file, the element and the fix.
"""

from negotiation.genius.exporter import Export, ExportRefused, export_scenario, write_export
from negotiation.genius.importer import REAL_STEPS, import_folder, import_genius
from negotiation.genius.reader import GeniusError

__all__ = ["REAL_STEPS", "Export", "ExportRefused", "GeniusError", "export_scenario",
           "import_folder", "import_genius", "write_export"]
