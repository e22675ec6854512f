//! The Kubernetes client: kubeconfig flag, else KUBECONFIG, then
//! ~/.kube/config, then the in-cluster service account.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::exit::{Failure, one_line};

pub async fn client(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<kube::Client, Failure> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path).map_err(|e| {
                Failure::Usage(format!(
                    "--kubeconfig {}: {}",
                    path.display(),
                    one_line(&e.to_string())
                ))
            })?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| {
                    Failure::Usage(format!(
                        "--kubeconfig {}: {}",
                        path.display(),
                        one_line(&e.to_string())
                    ))
                })?
        }
        None if context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| Failure::Usage(format!("--context: {}", one_line(&e.to_string()))))?,
        None => kube::Config::infer().await.map_err(|e| {
            Failure::Runtime(format!(
                "no Kubernetes configuration found: {}",
                one_line(&e.to_string())
            ))
        })?,
    };
    kube::Client::try_from(config).map_err(|e| {
        Failure::Runtime(format!(
            "cannot build a Kubernetes client: {}",
            one_line(&e.to_string())
        ))
    })
}
