"""A Griffe extension for the docs site: Keras' "Call arguments:" section as a parameter list.

Our docstrings follow Keras: a layer documents `call` under "Call arguments:",
written like "Args:" (`name: description`). Griffe's Google parser does not
know that title and renders it as an admonition whose entries run together
into one paragraph. This extension retitles the section, before parsing, as
Google's "Other Parameters" section titled "Call arguments", so the site lists
the call's arguments as it lists the constructor's. The source keeps the Keras
wording. Loaded by mkdocstrings (`extensions:` in mkdocs.yml).
"""

import re

import griffe

# A "Call arguments:" title alone on its line, at any indentation.
_CALL_ARGUMENTS = re.compile(r"^(?P<indent>[ \t]*)Call arguments:[ \t]*$", re.MULTILINE)


class KerasSections(griffe.Extension):
    def on_instance(self, *, obj, **kwargs):
        docstring = obj.docstring
        if docstring is not None and "Call arguments:" in docstring.value:
            # "<kind>: <title>" is Google style for a section of a known kind with its own title.
            docstring.value = _CALL_ARGUMENTS.sub(r"\g<indent>Other parameters: Call arguments:", docstring.value)
