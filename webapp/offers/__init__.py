"""The offers blueprint: the list, create, edit and delete (`views`); the offer page's
audiences, with one add form per form of the audience registry (`forms.audience_form` builds
it from the registry's fields, one view and one template block serve them all), and limits;
`catalog` (list and form helpers shared with rewards) and `fields` (number and id fields)."""

from flask import Blueprint

bp = Blueprint("offers", __name__, url_prefix="/offers")

from webapp.offers import views  # noqa: E402,F401
