"""mkdocs hooks: the estimators' API page renders every estimator module, those added since it was written too.

`keras_gumbel.estimators` imports each public module of its package; those its `__init__` does not name
(`DISCOVERED_MODULES`: a new estimator family, registered by its own module) get a section here, with their whole
`__all__`, where the page has the marker. A new estimator's docs need no edit of the page.
"""

MARKER = "<!-- the estimator modules keras_gumbel.estimators discovered -->"


def on_page_markdown(markdown, page, config, files):
    if MARKER not in markdown:
        return markdown
    from keras_gumbel import estimators

    sections = [f"::: keras_gumbel.estimators.{name}" for name in estimators.DISCOVERED_MODULES]
    return markdown.replace(MARKER, "\n\n".join(sections))
