// Why this file: lets the library build and publish on its own, without the demo app:
//   cd bindings/android && gradle assembleRelease publishReleasePublicationToJobsealRepository
// (Gradle 8.11.1; AGP 8.7.3 needs Gradle 8.9 or later). When android-demo/ includes this module,
// that build's settings apply instead and this file is ignored.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
    plugins {
        // Same versions as android-demo/build.gradle.kts.
        id("com.android.library") version "8.7.3"
        id("org.jetbrains.kotlin.android") version "2.2.21"
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "jobseal"
