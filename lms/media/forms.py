from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import SubmitField

from lms.media.services import VIDEO_SUFFIXES


class VideoUploadForm(FlaskForm):
    video = FileField(_l("视频文件"), validators=[
        FileRequired(_l("请选择视频文件")),
        FileAllowed([s.lstrip(".") for s in VIDEO_SUFFIXES], _l("不支持这种文件类型，请上传 MP4、MOV、WebM 等视频或音频")),
    ])
    captions = FileField(_l("字幕（可选，.vtt 或 .srt）"), validators=[FileAllowed(["vtt", "srt"], _l("字幕只支持 .vtt 或 .srt"))])
    submit = SubmitField(_l("上传"))
