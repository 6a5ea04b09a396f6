//! The rows ortl-infer writes, in the form the model's task gives: single-label predictions
//! (`ortl_manifest::predictions`) or multi-label ones (`predictions::multilabel`), behind
//! one writer so that the inference loop is the same for both.

use std::io::Write;

use ortl_manifest::predictions::{self, Columns, Format, multilabel};

use crate::decision::Decision;
use crate::explain::Explained;
use crate::{Item, ModelInfo};

pub struct RowWriter<W: Write> {
    sink: Sink<W>,
    decision: Decision,
    classes: Vec<String>,
}

enum Sink<W: Write> {
    Classes(predictions::Writer<W>),
    Findings(multilabel::Writer<W>),
}

impl<W: Write> RowWriter<W> {
    /// `columns.top_k` must be 0 for findings (their rows have no ranking).
    pub fn new(
        out: W,
        format: Format,
        info: &ModelInfo,
        decision: Decision,
        columns: Columns,
    ) -> Self {
        let sink = match &decision {
            Decision::Class(_) => Sink::Classes(predictions::Writer::new(
                out,
                format,
                &info.classes,
                columns,
            )),
            Decision::Findings(thresholds) => {
                debug_assert_eq!(columns.top_k, 0, "no top-k columns for findings");
                Sink::Findings(multilabel::Writer::new(
                    out,
                    format,
                    &info.classes,
                    thresholds,
                    columns.cam,
                    columns.model,
                ))
            }
        };
        Self {
            sink,
            decision,
            classes: info.classes.clone(),
        }
    }

    /// The header row (CSV and TSV only).
    pub fn header(&mut self) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Classes(writer) => writer.header(),
            Sink::Findings(writer) => writer.header(),
        }
    }

    pub fn row(
        &mut self,
        item: &Item,
        probabilities: &[f32],
        cam: &Explained,
    ) -> std::io::Result<()> {
        let cam_path = cam.map.as_ref().map(|(path, _)| path.as_str());
        match &mut self.sink {
            Sink::Classes(writer) => writer.row(&predictions::Row {
                path: &item.shown,
                label: item.label,
                predicted: self.decision.top(probabilities),
                probabilities,
                cam_path,
                cam_true_path: cam.true_map.as_deref(),
                split: item.split,
            }),
            Sink::Findings(writer) => writer.row(&multilabel::Row {
                path: &item.shown,
                targets: item.targets.as_deref(),
                probabilities,
                cam: cam
                    .map
                    .as_ref()
                    .map(|(path, class)| (path.as_str(), self.classes[*class].as_str())),
                split: item.split,
            }),
        }
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Classes(writer) => writer.flush(),
            Sink::Findings(writer) => writer.flush(),
        }
    }

    /// The output, with every row written to it.
    pub fn into_inner(self) -> std::io::Result<W> {
        match self.sink {
            Sink::Classes(writer) => writer.into_inner(),
            Sink::Findings(writer) => writer.into_inner(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ortl_manifest::Task;
    use ortl_manifest::predictions::EvaluatedModel;

    fn info(task: Task) -> ModelInfo {
        ModelInfo {
            input: "image".into(),
            output: "probabilities".into(),
            height: 8,
            width: 8,
            classes: vec!["Effusion".into(), "Mass".into()],
            task,
            filter: ortl_imaging::Filter::Bilinear,
            window: ortl_imaging::Window::Auto,
            epoch: None,
        }
    }

    fn write(task: Task, threshold: Option<f64>, item: &Item, cam: &Explained) -> String {
        let info = info(task);
        let columns = Columns {
            threshold: None,
            top_k: 0,
            cam: true,
            model: EvaluatedModel {
                path: "m.onnx".into(),
                epoch: None,
            },
        };
        let decision = Decision::new(&info, threshold).unwrap();
        let mut writer = RowWriter::new(Vec::new(), Format::Csv, &info, decision, columns);
        writer.header().unwrap();
        writer.row(item, &[0.6, 0.4], cam).unwrap();
        String::from_utf8(writer.into_inner().unwrap()).unwrap()
    }

    #[test]
    fn each_task_writes_its_own_form_with_the_cam_class_named() {
        let cam = Explained {
            map: Some(("cams/a.png".into(), 1)),
            true_map: None,
        };
        let item = Item {
            path: "a.png".into(),
            shown: "a.png".into(),
            label: None,
            targets: Some(vec![Some(true), None]),
            split: None,
        };
        assert_eq!(
            write(Task::MultiLabel, Some(0.4), &item, &cam),
            "path,y_Effusion,y_Mass,p_Effusion,p_Mass,t_Effusion,t_Mass,predicted,cam_path,cam_class,split,model,model_epoch\n\
             a.png,1,,0.600000,0.400000,0.400000,0.400000,Effusion|Mass,cams/a.png,Mass,,m.onnx,\n"
        );
        let item = Item {
            label: Some(1),
            targets: None,
            ..item
        };
        // Class 1 at p ≥ 0.4: predicted although less probable.
        assert_eq!(
            write(Task::SingleLabel, Some(0.4), &item, &cam)
                .lines()
                .nth(1),
            Some("a.png,1,Mass,1,Mass,0.600000,0.400000,cams/a.png,,,m.onnx,")
        );
    }
}
